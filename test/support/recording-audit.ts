import { EventEmitter } from 'node:events';
import type { AuditLog } from '../../core/audit/audit-log.js';

type Event = Record<string, unknown>;

/**
 * An audit writer for one source that writes through to a real AuditLog (every event validated) and remembers
 * what it wrote, so a test can wait for the event its request caused instead of polling the files.
 */
export function recordingAuditWriter<S extends 'egress' | 'broker'>(audit: AuditLog) {
  const appended = new EventEmitter<{ event: [Event] }>();
  const events: Event[] = [];
  const record = (event: Event): void => {
    events.push(event);
    appended.emit('event', event);
  };
  return {
    events: events as readonly Event[],
    writer: {
      append(source: S, event: Event): void {
        audit.append(source, event);
        record(event);
      },
      async appendDurable(source: S, event: Event): Promise<void> {
        await audit.appendDurable(source, event);
        record(event);
      },
    },
    /** The first event (already written, or written later) that satisfies `match`; rejects after `timeoutMs`. */
    waitForEvent(match: (event: Event) => boolean, timeoutMs = 5000): Promise<Event> {
      const hit = events.find(match);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          appended.off('event', listener);
          reject(new Error(`no matching audit event within ${timeoutMs} ms`));
        }, timeoutMs);
        const listener = (event: Event): void => {
          if (!match(event)) return;
          clearTimeout(timer);
          appended.off('event', listener);
          resolve(event);
        };
        appended.on('event', listener);
      });
    },
  };
}
