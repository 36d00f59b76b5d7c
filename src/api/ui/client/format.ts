// How times and figures read on the page.

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

export function seconds(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  return ms < 1_000 ? `${Math.round(ms)} ms` : `${(ms / 1_000).toFixed(1)} s`;
}

export function duration(secondsValue: number): string {
  if (secondsValue < 90) return `${Math.round(secondsValue)} s`;
  if (secondsValue < 5_400) return `${Math.round(secondsValue / 60)} min`;
  if (secondsValue < 172_800) return `${(secondsValue / 3_600).toFixed(1)} h`;
  return `${(secondsValue / 86_400).toFixed(1)} d`;
}

export function percent(share: number | null | undefined, digits = 2): string {
  return share === null || share === undefined ? '—' : `${(share * 100).toFixed(digits)}%`;
}

/** The classes that colour a state or an outcome: good, bad, waiting or neutral. */
export function tone(value: string | null | undefined): string {
  switch (value) {
    case 'promoted':
    case 'pass':
    case 'passed':
    case 'COMPLETED':
      return 'tone-good';
    case 'rolled-back':
    case 'aborted':
    case 'fail':
    case 'failed':
    case 'error':
    case 'FAILED':
    case 'rolling-back':
      return 'tone-bad';
    case 'paused':
    case 'awaiting-approval':
    case 'inconclusive':
    case 'skipped':
      return 'tone-wait';
    default:
      return 'tone-neutral';
  }
}
