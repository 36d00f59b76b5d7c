// A uPlot chart as a Preact component: drawn once, its data replaced as polls bring more, resized
// with its box so it fits a narrow window.
import { html } from 'htm/preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface ChartProps {
  /** What the chart shows, for screen readers (the figures are also in a table on the page). */
  label: string;
  options: Omit<uPlot.Options, 'width' | 'height'>;
  data: uPlot.AlignedData;
  height?: number;
  testId?: string;
}

export function Chart({ label, options, data, height = 220, testId }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const width = () => Math.max(240, element.clientWidth);
    plot.current = new uPlot({ ...options, width: width(), height }, data, element);
    const observer = new ResizeObserver(() => plot.current?.setSize({ width: width(), height }));
    observer.observe(element);
    return () => {
      observer.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // The options are fixed per chart; only the data changes between polls.
  }, []);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return html`<figure class="chart" role="img" aria-label=${label} data-testid=${testId}><div ref=${box}></div></figure>`;
}

/** A time axis in seconds since the epoch, as uPlot expects. */
export function epochSeconds(iso: string): number {
  return new Date(iso).getTime() / 1_000;
}
