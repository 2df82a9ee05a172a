/**
 * renderSessionReport: the one entry point that turns a finished session into a mail
 * (subject, HTML part, text part). Pure: same input, same output, no clock and no I/O; the time
 * zone is an option so that tests and the appliance agree on what they show.
 */
import type {TimeOptions} from './format.js';
import type {RenderedMail, SessionReport} from './model.js';
import {HTML_BUDGET_BYTES, renderSessionHtml} from './report-html.js';
import {renderSessionText} from './report-text.js';
import {DEFAULT_SUBJECT_TEMPLATE, expandSubject} from './subject.js';

export interface RenderOptions extends TimeOptions {
  /** Subject template with %JobName% etc.; defaults to DEFAULT_SUBJECT_TEMPLATE. */
  subjectTemplate?: string;
}

export function renderSessionReport(report: SessionReport, opts: RenderOptions = {}): RenderedMail {
  const subject = expandSubject(opts.subjectTemplate ?? DEFAULT_SUBJECT_TEMPLATE, report, opts);
  let html = renderSessionHtml(report, subject, opts);
  if (Buffer.byteLength(html) > HTML_BUDGET_BYTES) html = renderSessionHtml(report, subject, {...opts, compact: true});
  if (Buffer.byteLength(html) > HTML_BUDGET_BYTES) html = renderSessionHtml(report, subject, {...opts, compact: true, condensed: true});
  return {
    subject,
    html,
    text: renderSessionText(report, subject, opts),
  };
}
