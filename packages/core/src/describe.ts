/** A stack describing itself: as data, and as a Mermaid flowchart. */
import type { AnyLayer } from './layer.js';

export interface LayerDescription {
  readonly index: number;
  readonly name: string;
  readonly type: string;
  readonly protocol?: string | undefined;
  readonly provides: readonly string[];
  readonly offers: Readonly<Record<string, 'exclusive' | 'event'>>;
  readonly status?: Record<string, unknown> | undefined;
}

export interface BindingDescription {
  /** The layer that calls (or takes the hook). */
  readonly from: string;
  /** The layer that serves it, or undefined for an optional binding nobody serves. */
  readonly to: string | undefined;
  /** `call`: a capability called downward; `hook`: an exclusive slot filled from above; `event`: an observed event. */
  readonly kind: 'call' | 'hook' | 'event';
  readonly name: string;
  readonly optional: boolean;
  /** True when the binding was named (`bind`) rather than resolved to the nearest. */
  readonly named: boolean;
}

export interface StackDescription {
  readonly layers: readonly LayerDescription[];
  readonly bindings: readonly BindingDescription[];
}

export function describeStack(entries: readonly { layer: AnyLayer; name: string; status?: Record<string, unknown> | undefined }[]): StackDescription {
  const layers: LayerDescription[] = entries.map(({ layer, name, status }, index) => ({
    index,
    name,
    type: layer.type,
    protocol: layer.protocol?.name,
    provides: [...(layer.provides ?? [])],
    offers: { ...((layer.offers ?? {}) as Record<string, 'exclusive' | 'event'>) },
    status,
  }));
  const bindings: BindingDescription[] = [];
  entries.forEach(({ layer, name }, index) => {
    const bind = (layer.bind ?? {}) as Record<string, string | undefined>;
    const resolve = (capability: string, isHook: boolean): { to: string | undefined; kind: 'call' | 'hook' | 'event' } => {
      for (let i = index - 1; i >= 0; i--) {
        const below = layers[i]!;
        if (bind[capability] !== undefined && below.name !== bind[capability]) continue;
        if (isHook ? capability in below.offers : below.provides.includes(capability)) {
          return { to: below.name, kind: isHook ? (below.offers[capability] === 'event' ? 'event' : 'hook') : 'call' };
        }
      }
      return { to: undefined, kind: isHook ? 'hook' : 'call' };
    };
    const add = (capability: string, isHook: boolean, optional: boolean): void => {
      const { to, kind } = resolve(capability, isHook);
      bindings.push({ from: name, to, kind, name: capability, optional, named: bind[capability] !== undefined });
    };
    for (const c of layer.needs ?? []) add(c, false, false);
    for (const c of layer.optional ?? []) add(c, false, true);
    for (const h of layer.takes ?? []) add(h, true, false);
    for (const h of layer.takesOptional ?? []) add(h, true, true);
  });
  return { layers, bindings };
}

const quote = (text: string): string => text.replace(/"/g, '#quot;');

/**
 * Mermaid flowchart, bottom to top: solid arrows are calls going down (labelled with the
 * capabilities), dotted arrows are hooks and events going up.
 */
export function stackToMermaid(description: StackDescription): string {
  const lines = ['flowchart BT'];
  const id = (name: string): string => `L${description.layers.findIndex((layer) => layer.name === name)}`;
  for (const layer of description.layers) {
    const title = layer.name === layer.type ? layer.name : `${layer.name} (${layer.type})`;
    const provides = layer.provides.length ? `<br/>provides: ${layer.provides.join(', ')}` : '';
    lines.push(`  L${layer.index}["${quote(title)}${quote(provides)}"]`);
  }
  const grouped = new Map<string, { from: string; to: string; kind: 'call' | 'hook' | 'event'; names: string[] }>();
  for (const binding of description.bindings) {
    if (binding.to === undefined) continue;
    const kind = binding.kind === 'call' ? 'call' : 'hook';
    const key = `${binding.from}|${binding.to}|${kind}`;
    const group = grouped.get(key) ?? { from: binding.from, to: binding.to, kind: binding.kind, names: [] };
    group.names.push(binding.kind === 'event' ? `on ${binding.name}` : binding.name);
    grouped.set(key, group);
  }
  for (const group of grouped.values()) {
    const label = quote(group.names.join(', '));
    if (group.kind === 'call') lines.push(`  ${id(group.from)} -- "${label}" --> ${id(group.to)}`);
    else lines.push(`  ${id(group.to)} -. "${label}" .-> ${id(group.from)}`);
  }
  const unbound = description.bindings.filter((binding) => binding.to === undefined);
  for (const binding of unbound) lines.push(`  %% optional '${binding.name}' of ${binding.from} is not served`);
  return lines.join('\n');
}
