/** The shell commands the docs quote: every line of a ```sh block that runs one of our tools. */
import { readFileSync } from 'node:fs';

export interface DocCommand {
  /** The command as a reader would type it, without its comment or trailing `&`. */
  text: string;
  /** Where it is quoted, as `FILE:line`. */
  source: string;
}

const TOOLS = /^(npx|npm|node|grove|curl|python3?)\b/;

export function docCommands(file: string, name = file): DocCommand[] {
  const commands: DocCommand[] = [];
  let inShell = false;
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, index) => {
      if (/^```/.test(line)) {
        inShell = !inShell && /^```(sh|bash|shell)\s*$/.test(line);
        return;
      }
      if (!inShell) return;
      const text = line
        .replace(/\s+#(\s.*)?$/, '')
        .trim()
        .replace(/\s*&$/, '');
      // `a && b` is two commands: each is run (or excluded) on its own.
      for (const part of text.split(/\s+&&\s+/)) {
        if (TOOLS.test(part)) commands.push({ text: part, source: `${name}:${index + 1}` });
      }
    });
  return commands;
}
