/**
 * A stand-in Connection playing host_apply.py for unit tests of applyHost: it reads the request off
 * stdin (`<length>\n<payload>` then the request's JSON line, as payloadFor and runHostApply send it),
 * prints `progress` on stderr, then `lines(request, n)` (n: which run on this connection) on stdout.
 */
import type { Readable } from 'node:stream';
import type { CommandResult, Connection, ExecOptions } from '../../src/remote/connection.js';

export type HostApplyRequest = Record<string, any>;

export function fakeHostApply(lines: (request: HostApplyRequest, n: number) => object[], progress: string): Connection & { requests: HostApplyRequest[] } {
  const requests: HostApplyRequest[] = [];
  return {
    target: 'root@127.0.0.2:22',
    requests,
    async exec(_argv: string[], opts: ExecOptions = {}): Promise<CommandResult> {
      const stdin = opts.stdin as Readable;
      let text = '';
      const request = await new Promise<HostApplyRequest>((resolve) => {
        stdin.on('data', (chunk: Buffer) => {
          text += chunk.toString('latin1');
          const header = text.indexOf('\n');
          if (header < 0) return;
          const rest = text.slice(header + 1 + Number(text.slice(0, header)));
          if (rest.includes('\n')) resolve(JSON.parse(rest.slice(0, rest.indexOf('\n'))) as HostApplyRequest);
        });
      });
      requests.push(request);
      const out = lines(request, requests.length - 1).map((l) => `${JSON.stringify({ v: 1, ...l })}\n`).join('');
      opts.onStderr?.(Buffer.from(`${progress}\n`));
      opts.onStdout?.(Buffer.from(out));
      return { exitCode: 0, signal: null, stdout: out, stderr: '', ms: 1 };
    },
    put: async () => {},
    close: async () => {},
  };
}
