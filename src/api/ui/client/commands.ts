// The command buttons of a release: each asks for a reason, and is disabled (with the reason as its
// tooltip) when the role is too low or the state refuses it. The server stays the authority: its
// answer, refusal included, is shown as it came.
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { rejectCommand, type CommandName, type ReleaseStatus } from '../../../engine/release-state';
import { api, releasePath, roleAtLeast, type Caller } from './api';

const COMMANDS: { name: CommandName; label: string; danger?: boolean }[] = [
  { name: 'pause', label: 'Pause' },
  { name: 'resume', label: 'Resume' },
  { name: 'promote', label: 'Promote' },
  { name: 'approve', label: 'Approve' },
  { name: 'abort', label: 'Abort', danger: true },
];

export function whyDisabled(caller: Caller, status: ReleaseStatus, command: CommandName): string | null {
  if (!roleAtLeast(caller.role, 'operator')) return `${command} needs the operator role; ${caller.name} is a ${caller.role}`;
  return rejectCommand(status, command);
}

export function CommandBar({ caller, status, onDone }: { caller: Caller; status: ReleaseStatus; onDone: () => void }) {
  const [asking, setAsking] = useState<CommandName | null>(null);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const reasonField = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    if (asking) reasonField.current?.focus();
  }, [asking]);

  const send = async (event: Event) => {
    event.preventDefault();
    if (!asking) return;
    setBusy(true);
    try {
      const answer = await api<{ state?: string; accepted?: boolean; detail?: string }>('POST', `${releasePath(status.releaseId)}/${asking}`, {
        reason,
        ...(status.step ? { step: status.step.name } : {}),
      });
      setMessage({ text: answer.accepted ? (answer.detail ?? `${asking} sent`) : `${asking} done: the release is ${answer.state ?? 'updated'}`, error: false });
      setAsking(null);
      setReason('');
      onDone();
    } catch (e) {
      setMessage({ text: `The API refused ${asking}: ${(e as Error).message}`, error: true });
    } finally {
      setBusy(false);
    }
  };

  return html`
    <section class="panel" aria-labelledby="commands-title">
      <h2 id="commands-title">Commands</h2>
      <div class="buttons">
        ${COMMANDS.map(({ name, label, danger }) => {
          const why = whyDisabled(caller, status, name);
          return html`<button
            type="button"
            class=${danger ? 'danger' : ''}
            data-command=${name}
            disabled=${why !== null || busy}
            title=${why ?? `${label} this release (asks for a reason)`}
            aria-pressed=${asking === name}
            onClick=${() => {
              setAsking(name);
              setMessage(null);
            }}
          >
            ${label}
          </button>`;
        })}
      </div>
      ${asking &&
      html`<form class="reason" onSubmit=${send}>
        <label for="command-reason">Reason for ${asking} (goes into the audit trail)</label>
        <textarea id="command-reason" ref=${reasonField} required maxlength="1000" rows="2" value=${reason} onInput=${(e: Event) => setReason((e.target as HTMLTextAreaElement).value)}></textarea>
        <div class="buttons">
          <button type="submit" disabled=${busy || reason.trim() === ''}>Send ${asking}</button>
          <button type="button" onClick=${() => setAsking(null)}>Cancel</button>
        </div>
      </form>`}
      ${message && html`<p role=${message.error ? 'alert' : 'status'} class=${message.error ? 'tone-bad' : 'tone-good'} data-testid="command-result">${message.text}</p>`}
    </section>
  `;
}
