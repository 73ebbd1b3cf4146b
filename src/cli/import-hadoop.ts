import fs from 'node:fs';
import path from 'node:path';
import { CommanderError, type Command } from 'commander';
import { ConfigError, errorMessage } from '../errors.js';
import { escapeControls } from '../config/format.js';
import { planImport, type PlannedFile } from '../hadoop/conf/import.js';
import { ExitCode } from './exit-codes.js';

interface Opts {
  confDir: string;
  nameservice?: string;
  out: string;
  force: boolean;
  define: string[];
}

function usageError(message: string): never {
  process.stderr.write(
    `hafc import-hadoop: ${escapeControls(message).replace(/\n/g, '\nhafc import-hadoop: ')}\n`,
  );
  process.exitCode = ExitCode.USAGE;
  // main() maps a CommanderError to exit code 2; a plain return would leave it 0.
  throw new CommanderError(ExitCode.USAGE, 'hafc.importHadoop', message);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseDefines(defines: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of defines) {
    const i = d.indexOf('=');
    if (i <= 0) usageError(`-D ${JSON.stringify(d)}: expected name=value (a Java system property)`);
    out[d.slice(0, i)] = d.slice(i + 1);
  }
  return out;
}

/** Writes by a rename from a temporary file in the same directory: no half-written config. */
function writeAtomically(f: PlannedFile): void {
  const tmp = path.join(path.dirname(f.path), `.${path.basename(f.path)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, f.text, { mode: f.mode, flag: 'wx' });
  try {
    fs.chmodSync(tmp, f.mode);
    fs.renameSync(tmp, f.path);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

export function registerImportHadoop(program: Command): void {
  program
    .command('import-hadoop')
    .description(
      "write one hafc config per NameNode (and ResourceManager) from Hadoop's core-site.xml, hdfs-site.xml " +
        'and yarn-site.xml, in place of ZKFC; every key that could not be mapped is printed on stderr',
    )
    .requiredOption('--conf-dir <dir>', 'the Hadoop configuration directory (HADOOP_CONF_DIR)')
    .option('--nameservice <ns>', 'the HDFS nameservice, when hdfs-site.xml has more than one')
    .option('--out <dir>', 'where to write the configs', '.')
    .option('--force', 'overwrite files that exist', false)
    .option(
      '-D, --define <name=value>',
      'a Java system property for ${name} in values (repeatable)',
      collect,
      [],
    )
    .action((opts: Opts) => {
      let plan;
      try {
        plan = planImport({
          confDir: opts.confDir,
          outDir: opts.out,
          defines: parseDefines(opts.define),
          ...(opts.nameservice !== undefined ? { nameservice: opts.nameservice } : {}),
        });
      } catch (err) {
        if (err instanceof ConfigError) usageError(err.message);
        throw err;
      }
      for (const note of plan.notes) {
        const label = note.kind === 'unmapped' ? 'not mapped' : 'note';
        process.stderr.write(`hafc import-hadoop: ${label}: ${escapeControls(note.text)}\n`);
      }
      if (plan.files.length === 0) usageError('nothing to write (see above)');
      try {
        fs.mkdirSync(opts.out, { recursive: true });
      } catch (err) {
        usageError(`--out ${JSON.stringify(opts.out)}: cannot create the directory: ${errorMessage(err)}`);
      }
      const existing = plan.files.filter((f) => fs.existsSync(f.path));
      if (existing.length > 0 && !opts.force) {
        usageError(
          `refusing to overwrite ${existing.map((f) => f.path).join(', ')}: they exist; add --force to replace them`,
        );
      }
      for (const f of plan.files) {
        try {
          writeAtomically(f);
        } catch (err) {
          process.stderr.write(
            `hafc import-hadoop: cannot write ${escapeControls(f.path)}: ${escapeControls(errorMessage(err))}\n`,
          );
          process.exitCode = ExitCode.FAILED;
          return;
        }
        process.stdout.write(`wrote ${escapeControls(f.path)} (${f.what})\n`);
      }
      process.exitCode = ExitCode.OK;
    });
}
