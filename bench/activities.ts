export const benchActivities = {
  async noop(): Promise<void> {},
};
export type BenchActivities = typeof benchActivities;
