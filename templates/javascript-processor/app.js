// A Torvyn processor in JavaScript that upper-cases text.

import { allocate } from 'torvyn:streaming/buffer-allocator@0.1.0';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export const processor = {
  process(input) {
    let text;
    try {
      text = utf8.decode(input.payload.readAll());
    } catch {
      // A `process-error` goes back to the host, whose error policy decides; anything
      // else thrown traps the component, which then starts afresh.
      throw { tag: 'invalid-input', val: `element ${input.meta.sequence} is not UTF-8` };
    }
    const data = new TextEncoder().encode(text.toUpperCase());
    // The host owns every buffer: give back our handle to the one we fill as soon as it
    // is frozen, not whenever the collector runs.
    const out = allocate(BigInt(data.length));
    out.append(data);
    out.setContentType(input.meta.contentType);
    const payload = out.freeze();
    out[Symbol.dispose]();
    return { tag: 'emit', val: { meta: input.meta, payload } };
  },
};
