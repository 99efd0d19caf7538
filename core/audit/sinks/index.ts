import type { SinkSettings } from '../../policy/compile-audit.js';
import { createElasticsearchSink } from './elasticsearch.js';
import type { Sink, SinkContext } from './sink.js';
import { createSplunkHecSink } from './splunk-hec.js';
import { createSyslogSink } from './syslog.js';
import { createWebhookSink } from './webhook.js';

/** Build the sink a policy entry describes. */
export async function createSink(settings: SinkSettings, ctx: SinkContext): Promise<Sink> {
  switch (settings.type) {
    case 'syslog':
      return createSyslogSink(settings, ctx);
    case 'splunk_hec':
      return createSplunkHecSink(settings, ctx);
    case 'elasticsearch':
      return createElasticsearchSink(settings, ctx);
    case 'webhook':
      return createWebhookSink(settings, ctx);
  }
}

export type { SendResult, ShippedRecord, Sink, SinkContext } from './sink.js';
