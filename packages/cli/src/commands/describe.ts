/** `deccom describe`: the stack a command runs, drawn by the node itself. Starts nothing. */
import { Identity } from '@deccom/core';
import { EXIT, UsageError } from '../errors.js';
import { HELP } from '../help.js';
import { printers, type CliIo } from '../io.js';
import { discoveryNode, receiverNode, rudpNode, tcpNode, type StackOptions } from '../network.js';
import { parseCommand, stringValue } from '../options.js';

const STACKS = {
  bootstrap: discoveryNode,
  chat: discoveryNode,
  status: discoveryNode,
  'send-rudp': rudpNode,
  'send-tcp': tcpNode,
  receive: receiverNode,
} as const;

export async function describeCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommand('describe', args, { stack: { type: 'string' }, format: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
  const { out } = printers(io);
  if (values['help'] === true) {
    io.stdout.write(HELP['describe']!);
    return EXIT.OK;
  }
  const stack = stringValue(values, 'stack') ?? 'chat';
  const make = (STACKS as Record<string, (options: StackOptions) => { describe(): ReturnType<ReturnType<typeof discoveryNode>['describe']>; mermaid(): string }>)[stack];
  if (make === undefined) throw new UsageError(`--stack must be one of ${Object.keys(STACKS).join(', ')}; got '${stack}'`);
  const format = stringValue(values, 'format') ?? 'mermaid';
  if (format !== 'mermaid' && format !== 'text' && format !== 'json') throw new UsageError(`--format must be mermaid, text or json; got '${format}'`);
  const node = make({ identity: Identity.generate(), host: '127.0.0.1', port: 0, bootstrap: [], noise: 'encrypt' });
  const description = node.describe();
  if (format === 'json') {
    out(JSON.stringify(description, null, 2));
  } else if (format === 'mermaid') {
    out(node.mermaid());
  } else {
    out(`stack '${stack}', bottom to top: ${description.layers.map((layer) => layer.name).join(' > ')}`);
    for (const layer of description.layers) {
      out(`${layer.index}. ${layer.name}${layer.protocol ? ` (protocol ${layer.protocol})` : ''}`);
      if (layer.provides.length > 0) out(`     provides: ${layer.provides.join(', ')}`);
      const calls = description.bindings.filter((binding) => binding.from === layer.name && binding.to !== undefined);
      for (const binding of calls) out(`     ${binding.kind === 'call' ? 'calls' : binding.kind === 'hook' ? 'takes hook' : 'observes'} ${binding.name} of ${binding.to}`);
    }
  }
  return EXIT.OK;
}
