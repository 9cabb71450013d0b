// #/event/42: one event whole, at its own URL.
import { html } from '../lib.js';
import { EventDetail } from '../event.js';

export function Event({ route }) {
  return html`<section class="view"><${EventDetail} id=${Number(route.arg)} /></section>`;
}
