/**
 * Hadoop's XML configuration format (core-site.xml and friends), read by a small strict parser
 * of our own rather than a general XML library: the format is one root with flat <property>
 * children, and what we must refuse (DTDs, XInclude) is easier to refuse where we can see it.
 *
 * Accepted: an XML declaration and other processing instructions, comments, CDATA, the five
 * predefined entities and numeric character references, <property> with <name>/<value> children
 * (or name=/value= attributes, which Hadoop also reads), and <final>, <description>, <source>,
 * <tag> children, which are read and ignored. Refused, with the file and line: a DOCTYPE
 * (Hadoop's own parser rejects DTDs), <xi:include> (the included file would be missing from
 * what we map), anything that is not well-formed.
 */
import { ConfigError } from '../../errors.js';
import { clip, escapeControls } from '../../config/format.js';

export interface XmlProperty {
  name: string;
  value: string;
  /** 1-based line of the <property> element, for messages. */
  line: number;
}

/** Hadoop site files are a few hundred KiB at most; a bigger one is not a site file. */
export const MAX_XML_BYTES = 4 * 1024 * 1024;

interface Element {
  tag: string;
  attrs: Record<string, string>;
  children: Element[];
  text: string;
  line: number;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const NAME = /[A-Za-z_:][-A-Za-z0-9_.:]*/y;

class Parser {
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly source: string,
  ) {}

  fail(message: string, at = this.pos): never {
    const line = this.text.slice(0, at).split('\n').length;
    throw new ConfigError(`${escapeControls(this.source)}:${line}: ${message}`);
  }

  private lineAt(at: number): number {
    return this.text.slice(0, at).split('\n').length;
  }

  private startsWith(s: string): boolean {
    return this.text.startsWith(s, this.pos);
  }

  private skipUntil(end: string, what: string): string {
    const i = this.text.indexOf(end, this.pos);
    if (i === -1) this.fail(`unterminated ${what}`);
    const body = this.text.slice(this.pos, i);
    this.pos = i + end.length;
    return body;
  }

  private skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos] as string)) this.pos++;
  }

  /** Comments, processing instructions and whitespace between elements. */
  private skipMisc(allowDoctype: boolean): void {
    for (;;) {
      this.skipSpace();
      if (this.startsWith('<!--')) {
        this.pos += 4;
        this.skipUntil('-->', 'comment');
      } else if (this.startsWith('<?')) {
        this.pos += 2;
        this.skipUntil('?>', 'processing instruction');
      } else if (this.startsWith('<!DOCTYPE')) {
        if (!allowDoctype) this.fail('a DOCTYPE is not allowed here');
        this.fail(
          'a DOCTYPE (DTD) is not supported: Hadoop refuses DTDs in configuration files too; remove it',
        );
      } else return;
    }
  }

  private name(): string {
    NAME.lastIndex = this.pos;
    const m = NAME.exec(this.text);
    if (!m)
      this.fail(
        `expected an element or attribute name, got ${JSON.stringify(this.text.slice(this.pos, this.pos + 10))}`,
      );
    this.pos += m[0].length;
    return m[0];
  }

  private decode(raw: string, at: number): string {
    return raw.replace(/&([^;&\s]*);?/g, (whole, ref: string) => {
      if (!whole.endsWith(';'))
        this.fail(`an "&" that does not start an entity reference: ${JSON.stringify(clip(whole, 20))}`, at);
      if (ref.startsWith('#')) {
        const code = ref.startsWith('#x') ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
        if (
          !Number.isInteger(code) ||
          code <= 0 ||
          code > 0x10ffff ||
          !/^#(x[0-9A-Fa-f]+|[0-9]+)$/.test(ref)
        ) {
          this.fail(`bad character reference &${ref};`, at);
        }
        return String.fromCodePoint(code);
      }
      const v = ENTITIES[ref];
      if (v === undefined)
        this.fail(`unknown entity &${ref}; (only &amp; &lt; &gt; &quot; &apos; and &#N; are defined)`, at);
      return v;
    });
  }

  private attributes(): Record<string, string> {
    const attrs: Record<string, string> = {};
    for (;;) {
      this.skipSpace();
      const c = this.text[this.pos];
      if (c === '>' || c === '/' || c === undefined) return attrs;
      const key = this.name();
      this.skipSpace();
      if (this.text[this.pos] !== '=') this.fail(`attribute ${key} has no value`);
      this.pos++;
      this.skipSpace();
      const quote = this.text[this.pos];
      if (quote !== '"' && quote !== "'") this.fail(`attribute ${key}: the value must be quoted`);
      this.pos++;
      const at = this.pos;
      const raw = this.skipUntil(quote, `attribute ${key}`);
      if (raw.includes('<')) this.fail(`attribute ${key}: "<" is not allowed in a value`, at);
      if (Object.prototype.hasOwnProperty.call(attrs, key)) this.fail(`attribute ${key} is given twice`, at);
      attrs[key] = this.decode(raw, at);
    }
  }

  element(depth: number): Element {
    if (depth > 16)
      this.fail('elements nested deeper than 16 levels; this is not a Hadoop configuration file');
    const start = this.pos;
    if (this.text[this.pos] !== '<') this.fail('expected an element');
    this.pos++;
    const tag = this.name();
    const attrs = this.attributes();
    const el: Element = { tag, attrs, children: [], text: '', line: this.lineAt(start) };
    if (this.startsWith('/>')) {
      this.pos += 2;
      return el;
    }
    if (this.text[this.pos] !== '>') this.fail(`<${tag}>: expected ">"`);
    this.pos++;
    for (;;) {
      if (this.pos >= this.text.length) this.fail(`<${tag}> (line ${el.line}) is never closed`);
      if (this.startsWith('</')) {
        this.pos += 2;
        const close = this.name();
        if (close !== tag) this.fail(`</${close}> closes <${tag}> (line ${el.line})`);
        this.skipSpace();
        if (this.text[this.pos] !== '>') this.fail(`</${close}>: expected ">"`);
        this.pos++;
        return el;
      }
      if (this.startsWith('<!--')) {
        this.pos += 4;
        this.skipUntil('-->', 'comment');
      } else if (this.startsWith('<![CDATA[')) {
        this.pos += 9;
        el.text += this.skipUntil(']]>', 'CDATA section');
      } else if (this.startsWith('<?')) {
        this.pos += 2;
        this.skipUntil('?>', 'processing instruction');
      } else if (this.startsWith('<!')) {
        this.fail('a declaration (<!...>) is not allowed inside an element');
      } else if (this.text[this.pos] === '<') {
        el.children.push(this.element(depth + 1));
      } else {
        const at = this.pos;
        const next = this.text.indexOf('<', this.pos);
        const end = next === -1 ? this.text.length : next;
        el.text += this.decode(this.text.slice(this.pos, end), at);
        this.pos = end;
      }
    }
  }

  document(): Element {
    if (this.text.charCodeAt(0) === 0xfeff) this.pos = 1;
    this.skipMisc(true);
    if (this.pos >= this.text.length) this.fail('no root element: the file is empty');
    const root = this.element(0);
    this.skipMisc(false);
    if (this.pos < this.text.length) this.fail('text after the root element');
    return root;
  }
}

const IGNORED_PROPERTY_CHILDREN = new Set(['final', 'description', 'source', 'tag']);

function childText(prop: Element, tag: string, source: string): string | undefined {
  const found = prop.children.filter((c) => c.tag === tag);
  if (found.length === 0) return undefined;
  if (found.length > 1) {
    throw new ConfigError(
      `${escapeControls(source)}:${prop.line}: <property> has ${found.length} <${tag}> elements`,
    );
  }
  const el = found[0] as Element;
  if (el.children.length > 0) {
    throw new ConfigError(
      `${escapeControls(source)}:${el.line}: <${tag}> must hold text, not <${(el.children[0] as Element).tag}>`,
    );
  }
  return el.text;
}

/**
 * The properties of one Hadoop configuration file, in file order (a later one of the same name
 * wins, as in Hadoop). `source` names the file in messages.
 */
export function parseHadoopXml(text: string, source: string): XmlProperty[] {
  if (text.length > MAX_XML_BYTES) {
    throw new ConfigError(`${escapeControls(source)}: over ${MAX_XML_BYTES} bytes; not a Hadoop site file`);
  }
  const root = new Parser(text, source).document();
  const where = (el: Element): string => `${escapeControls(source)}:${el.line}`;
  if (root.tag !== 'configuration') {
    throw new ConfigError(`${where(root)}: the root element is <${root.tag}>, expected <configuration>`);
  }
  const out: XmlProperty[] = [];
  for (const el of root.children) {
    if (el.tag === 'xi:include' || el.tag.endsWith(':include') || el.tag === 'include') {
      throw new ConfigError(
        `${where(el)}: <${el.tag} href=${JSON.stringify(el.attrs.href ?? '')}> is not supported: merge the included file into this one`,
      );
    }
    if (el.tag !== 'property') {
      throw new ConfigError(`${where(el)}: unexpected <${el.tag}> in <configuration>; expected <property>`);
    }
    for (const c of el.children) {
      if (c.tag !== 'name' && c.tag !== 'value' && !IGNORED_PROPERTY_CHILDREN.has(c.tag)) {
        throw new ConfigError(`${where(c)}: unexpected <${c.tag}> in <property>`);
      }
    }
    const name = (childText(el, 'name', source) ?? el.attrs.name)?.trim();
    if (name === undefined || name === '') {
      throw new ConfigError(`${where(el)}: <property> without a <name>`);
    }
    // Hadoop keeps a property without a value out of the configuration (it is "unset").
    const value = childText(el, 'value', source) ?? el.attrs.value;
    if (value === undefined) continue;
    // Kept as written: Hadoop trims only where a key is read with getTrimmed (numbers, lists).
    out.push({ name, value, line: el.line });
  }
  return out;
}
