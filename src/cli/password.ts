/** `plantgate hash-password`: the hash to paste as passwordHash, from a password read without echo or piped in. */
import { parseArgs } from 'node:util';
import { UsageError } from './usage.js';

/**
 * Reads the password from standard input: piped (one trailing newline dropped, as echo adds it)
 * or typed at a terminal without echo, twice. Only the hash is printed.
 */
export async function hashPasswordCommand(args: string[]): Promise<number> {
  parseArgs({ args, options: {}, strict: true });
  const { hashPassword } = await import('../security/passwords.js');
  let password: string;
  if (process.stdin.isTTY) {
    password = await readHidden('Password: ');
    if ((await readHidden('Again: ')) !== password) throw new UsageError('the two passwords differ');
  } else {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  }
  if (!password) throw new UsageError('empty password (pipe it in: echo -n "..." | plantgate hash-password)');
  if (password.length < 8) process.stderr.write('plantgate: warning: a password shorter than 8 characters is easy to guess\n');
  process.stdout.write(`${await hashPassword(password)}\n`);
  return 0;
}

function readHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    process.stderr.write(prompt);
    const stdin = process.stdin;
    stdin.setRawMode(true);
    stdin.resume();
    let s = '';
    const onData = (b: Buffer) => {
      for (const ch of b.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new UsageError('cancelled'));
        if (ch === '\u007f') s = s.slice(0, -1);
        else s += ch;
      }
    };
    const done = (err?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(s);
    };
    stdin.on('data', onData);
  });
}
