// One event whole (GET /api/event): every field as a tree, the raw timestamp to copy.
import { html, useState } from './lib.js';
import { useApi } from './api.js';
import { Time, copyText } from './time.js';
import { TermTree, useExpanded } from './term.js';
import { ErrorBox, Loading, Pid } from './components.js';

export function EventDetail({ id, onClose }) {
  const { data, error } = useApi(id ? 'event' : null, { id });
  const [copied, setCopied] = useState(false);
  if (!id) return null;
  return html`<aside class="detail" data-testid="event-detail">
    <header><b>#${id}</b> ${data && html`<span class=${`type type-${data.type}`}>${data.type}</span>`}
      ${onClose && html`<button class="small close" onClick=${onClose} aria-label="close">✕</button>`}</header>
    <${ErrorBox} error=${error} />
    ${!data && !error && html`<${Loading} />`}
    ${data && html`<dl class="facts">
        <dt>When</dt><dd><${Time} ts=${data.ts} label=${`#${data.id}`} />
          <button class="small" onClick=${async () => setCopied(await copyText(data.ts))}>${copied ? 'copied' : 'copy raw'}</button></dd>
        <dt>Process</dt><dd><${Pid} pid=${data.pid} />${data.to && html` → <${Pid} pid=${data.to} />`}</dd>
      </dl>
      ${data.fields.map(([k, v]) => html`<${Field} key=${`${id}/${k}`} name=${k} term=${v} />`)}`}
  </aside>`;
}

function Field({ name, term }) {
  const [expanded, toggle] = useExpanded();
  return html`<div class="field" data-field=${name}><h4>${name}</h4>
    <${TermTree} term=${term} expanded=${expanded} onToggle=${toggle} openDepth=${2} height=${260} /></div>`;
}
