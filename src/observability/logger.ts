import { DefaultLogger, type LogLevel } from '@temporalio/worker';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { EventContext, ReleaseEvent } from '../engine/events';

export type { Logger } from 'pino';

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino({ level: options.level ?? 'info', base: { app: 'rampart' } }, options.destination);
}

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/** The Temporal SDK's own log lines (worker state, workflow and activity logs) as pino lines. */
export function sdkLogger(logger: Logger, level: LogLevel = 'INFO'): DefaultLogger {
  return new DefaultLogger(level, (entry) => {
    logger[LEVELS[entry.level]]({ ...entry.meta, source: 'temporal-sdk' }, entry.message);
  });
}

/** One line per release event, each carrying the release id, service and phase, so `grep <release id>` tells its story. */
export function logReleaseEvent(logger: Logger, releaseId: string, event: ReleaseEvent, context: EventContext): void {
  const line = { releaseId, ...context, ...event };
  if (event.type === 'rollback' || (event.type === 'drill' && event.result === 'failed')) logger.warn(line, `release ${event.type}`);
  else logger.info(line, event.type === 'transition' ? event.event : `release ${event.type}`);
}
