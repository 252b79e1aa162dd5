// A strict little XML well-formedness checker for the report's HTML and SVG (not a test file).
// Accepts an optional XML declaration and <!DOCTYPE html>; everything else must be balanced
// elements with quoted, unique attributes, text without raw '<', and '&' only in entities.

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const ENTITY = /^&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/;

function decode(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_m, e: string) => {
    if (e === 'amp') return '&';
    if (e === 'lt') return '<';
    if (e === 'gt') return '>';
    if (e === 'quot') return '"';
    if (e === 'apos') return "'";
    return String.fromCodePoint(e.startsWith('#x') ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
  });
}

function checkText(s: string, where: string): void {
  for (let i = s.indexOf('&'); i >= 0; i = s.indexOf('&', i + 1)) {
    if (!ENTITY.test(s.slice(i))) throw new Error(`bare '&' ${where}: ${JSON.stringify(s.slice(i, i + 20))}`);
  }
  if (s.includes('<')) throw new Error(`raw '<' ${where}`);
}

/** Parses `source`; throws an Error describing the first problem. Returns the root element. */
export function parseXml(source: string): XmlElement {
  let s = source.replace(/^\uFEFF/, '');
  s = s.replace(/^\s*<\?xml[^?]*\?>/, '');
  s = s.replace(/^\s*<!DOCTYPE html>/i, '');
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  let i = 0;
  while (i < s.length) {
    const lt = s.indexOf('<', i);
    const text = lt < 0 ? s.slice(i) : s.slice(i, lt);
    if (text) {
      checkText(text, `in text at ${i}`);
      if (stack.length === 0 && text.trim()) throw new Error(`text outside the root element at ${i}`);
      if (stack.length) stack[stack.length - 1]!.text += decode(text);
    }
    if (lt < 0) break;
    if (s.startsWith('<!--', lt)) {
      const end = s.indexOf('-->', lt);
      if (end < 0) throw new Error('unterminated comment');
      i = end + 3;
      continue;
    }
    const gt = findTagEnd(s, lt);
    const tag = s.slice(lt, gt + 1);
    const close = /^<\/([A-Za-z][\w:.-]*)\s*>$/.exec(tag);
    if (close) {
      const top = stack.pop();
      if (!top || top.name !== close[1]) throw new Error(`</${close[1]}> closes <${top?.name ?? 'nothing'}> at ${lt}`);
      if (stack.length === 0) root = top;
      i = gt + 1;
      continue;
    }
    const open = /^<([A-Za-z][\w:.-]*)([\s\S]*?)(\/?)>$/.exec(tag);
    if (!open) throw new Error(`malformed tag at ${lt}: ${tag.slice(0, 60)}`);
    const attrs: Record<string, string> = {};
    const attrText = open[2]!;
    const re = /\s+([A-Za-z_:][\w:.-]*)\s*=\s*("([^"]*)"|'([^']*)')/gy;
    let pos = 0;
    for (;;) {
      re.lastIndex = pos;
      const m = re.exec(attrText);
      if (!m) break;
      const name = m[1]!;
      if (name in attrs) throw new Error(`duplicate attribute ${name} on <${open[1]}>`);
      const value = m[3] ?? m[4] ?? '';
      checkText(value.replace(/>/g, ''), `in attribute ${name} of <${open[1]}>`);
      attrs[name] = decode(value);
      pos = re.lastIndex;
    }
    if (attrText.slice(pos).trim() !== '') throw new Error(`bad attributes on <${open[1]}>: ${JSON.stringify(attrText.slice(pos, pos + 40))}`);
    const el: XmlElement = { name: open[1]!, attrs, children: [], text: '' };
    if (stack.length) stack[stack.length - 1]!.children.push(el);
    else if (root) throw new Error('more than one root element');
    if (open[3] === '/') { if (stack.length === 0) root = el; }
    else stack.push(el);
    i = gt + 1;
  }
  if (stack.length) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  if (!root) throw new Error('no root element');
  return root;
}

function findTagEnd(s: string, from: number): number {
  let quote: string | null = null;
  for (let j = from + 1; j < s.length; j++) {
    const c = s[j]!;
    if (quote) { if (c === quote) quote = null; continue; }
    if (c === '"' || c === "'") quote = c;
    else if (c === '>') return j;
    else if (c === '<') throw new Error(`'<' inside a tag at ${j}`);
  }
  throw new Error(`unterminated tag at ${from}`);
}

/** Every element in document order. */
export function allElements(root: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  const walk = (e: XmlElement) => { out.push(e); e.children.forEach(walk); };
  walk(root);
  return out;
}
