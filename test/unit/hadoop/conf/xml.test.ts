import { describe, expect, it } from 'vitest';
import { parseHadoopXml } from '../../../../src/hadoop/conf/xml.js';

const wrap = (body: string): string => `<?xml version="1.0"?>\n<configuration>\n${body}\n</configuration>\n`;

describe('parseHadoopXml', () => {
  it('reads name/value children, attributes, entities, CDATA and comments, in file order', () => {
    const props = parseHadoopXml(
      wrap(`<!-- a comment with <property> in it -->
  <property><name> a.b </name><value>x &amp; y &lt;z&gt; &#65;&#x42;</value><final>true</final>
    <description>ignored</description></property>
  <property name="c" value="&quot;q&quot;"/>
  <property><name>d</name><value><![CDATA[<raw> & ]]>more</value></property>
  <property><name>a.b</name><value>later</value></property>
  <property><name>unset</name></property>`),
      'core-site.xml',
    );
    expect(props).toEqual([
      { name: 'a.b', value: 'x & y <z> AB', line: 4 },
      { name: 'c', value: '"q"', line: 6 },
      { name: 'd', value: '<raw> & more', line: 7 },
      { name: 'a.b', value: 'later', line: 8 },
    ]);
  });

  it('keeps a value as written, newlines and all (fencing methods are one per line)', () => {
    const [p] = parseHadoopXml(
      wrap('<property><name>m</name><value>\n  sshfence\n  shell(true)\n</value></property>'),
      'f',
    );
    expect(p?.value).toBe('\n  sshfence\n  shell(true)\n');
  });

  it.each([
    [
      '<configuration><property><name>a</name><value>1</value></propery></configuration>',
      'f:1: </propery> closes <property>',
    ],
    ['<configuration><property><name>a</name>', 'f:1: <property> (line 1) is never closed'],
    ['<conf/>', 'f:1: the root element is <conf>, expected <configuration>'],
    ['', 'f:1: no root element: the file is empty'],
    ['<!DOCTYPE configuration [<!ENTITY x "y">]><configuration/>', 'a DOCTYPE (DTD) is not supported'],
    [wrap('<xi:include href="more.xml"/>'), 'f:3: <xi:include href="more.xml"> is not supported'],
    [wrap('<property><name>a</name><value>&bogus;</value></property>'), 'unknown entity &bogus;'],
    [
      wrap('<property><name>a</name><value>a & b</value></property>'),
      'an "&" that does not start an entity reference',
    ],
    [wrap('<property><value>1</value></property>'), 'f:3: <property> without a <name>'],
    [wrap('<property><name>a</name><name>b</name></property>'), 'f:3: <property> has 2 <name> elements'],
    [wrap('<property><name>a</name><value><b/></value></property>'), '<value> must hold text, not <b>'],
    [wrap('<prop/>'), 'f:3: unexpected <prop> in <configuration>; expected <property>'],
    [wrap('<property><name>a</name><valu>1</valu></property>'), 'f:3: unexpected <valu> in <property>'],
    ['<configuration/>trailing', 'f:1: text after the root element'],
    ['<configuration a=1/>', 'attribute a: the value must be quoted'],
  ])('refuses %j with the file and line', (text, message) => {
    expect(() => parseHadoopXml(text, 'f')).toThrow(message);
  });
});
