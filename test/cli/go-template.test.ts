// docker's --format templates: the Go text/template subset berth renders.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GoTemplate, TemplateError } from '../../cli/go-template.js';

const render = (src: string, data: unknown) => new GoTemplate(src).render(data);

const container = {
  Id: 'abc123', Name: '/web',
  State: { Status: 'running', Running: true, Pid: 42, ExitCode: 0 },
  Config: { Labels: { 'com.example.tier': 'front', app: 'shop' }, Env: ['A=1', 'B=2'], Cmd: ['sh', '-c', 'echo hi'] },
  NetworkSettings: { Networks: { bridge: { IPAddress: '10.66.0.2' }, back: { IPAddress: '10.67.0.5' } } },
  HostConfig: { Privileged: false, CapAdd: null },
};

test('fields, nested fields, $ and missing keys (<no value>) as docker inspect -f prints them', () => {
  assert.equal(render('{{.State.Pid}} {{.Name}} {{.State.Running}}', container), '42 /web true');
  assert.equal(render('{{.State.Nothing}}|{{.Nope.Deeper}}', container), '<no value>|<no value>');
  assert.equal(render('{{with .State}}{{.Status}} of {{$.Name}}{{end}}', container), 'running of /web');
  assert.equal(render('{{.Config.Cmd}} {{.Config.Labels}}', container), '[sh -c echo hi] map[app:shop com.example.tier:front]');
  assert.equal(render('{{.HostConfig.CapAdd}}', container), '<no value>');
  assert.equal(render('{{.}}', 'plain'), 'plain');
});

test('range over maps (sorted keys) and lists, with variables; if / else if / else; with … else', () => {
  assert.equal(render('{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', container), '10.67.0.5 10.66.0.2 ');
  assert.equal(render('{{range $name, $n := .NetworkSettings.Networks}}{{$name}}={{$n.IPAddress}};{{end}}', container), 'back=10.67.0.5;bridge=10.66.0.2;');
  assert.equal(render('{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}', container), '0:A=1 1:B=2 ');
  assert.equal(render('{{range .Missing}}x{{else}}none{{end}}', container), 'none');
  const state = (s: string) => render('{{if eq .State.Status "running"}}up{{else if eq .State.Status "exited"}}down ({{.State.ExitCode}}){{else}}other{{end}}', { ...container, State: { ...container.State, Status: s } });
  assert.deepEqual(['running', 'exited', 'paused'].map(state), ['up', 'down (0)', 'other']);
  assert.equal(render('{{with .HostConfig.CapAdd}}caps{{else}}no caps{{end}}', container), 'no caps');
  assert.equal(render('{{$x := .State.Pid}}{{if gt $x 10}}big {{$x}}{{end}}', container), 'big 42');
  assert.equal(render('{{if and .State.Running (not .HostConfig.Privileged)}}ok{{end}}', container), 'ok');
});

test('docker\'s functions and Go\'s: json, index, join, split, upper, lower, title, len, printf, pipelines, trim markers, comments', () => {
  assert.equal(render('{{json .State}}', container), '{"Status":"running","Running":true,"Pid":42,"ExitCode":0}');
  assert.equal(render('{{json .HostConfig.CapAdd}}', container), 'null');
  assert.equal(render('{{index .Config.Labels "com.example.tier"}}', container), 'front');
  assert.equal(render('{{index .Config.Cmd 2}}', container), 'echo hi');
  assert.equal(render('{{join .Config.Env ","}}', container), 'A=1,B=2');
  assert.equal(render('{{range split "a:b:c" ":"}}[{{.}}]{{end}}', null), '[a][b][c]');
  assert.equal(render('{{.State.Status | upper}} {{"MiXed" | lower}} {{title "hello world"}}', container), 'RUNNING mixed Hello World');
  assert.equal(render('{{len .Config.Env}} {{len .Config.Labels}} {{len .Name}}', container), '2 2 4');
  assert.equal(render('{{printf "%s has %d %q" .Name .State.Pid "x"}}|{{printf "%-5s|%5s" "a" "b"}}', container), '/web has 42 "x"|a    |    b');
  assert.equal(render('{{(index .Config.Cmd 0) | printf "%s!"}} {{(index .NetworkSettings.Networks "back").IPAddress}}', container), 'sh! 10.67.0.5');
  assert.equal(render('a  {{- /* gone */ -}}  b {{- " c" }}\n', {}), 'ab c\n');
  assert.equal(render('{{truncate .Id 3}}|{{pad .Name 1 2}}|{{println "x" 1}}', container), 'abc| /web  |x 1\n');
});

test('errors: a parse error or an unknown function says so, without rendering half a template', () => {
  assert.throws(() => new GoTemplate('{{.State.Pid'), (e: Error) => e instanceof TemplateError && /template parsing error: unclosed action/.test(e.message));
  assert.throws(() => new GoTemplate('{{frobnicate .X}}'), /function "frobnicate" not defined/);
  assert.throws(() => new GoTemplate('{{if .X}}open'), /has no \{\{end\}\}/);
  assert.throws(() => new GoTemplate('{{end}}'), /unexpected \{\{end\}\}/);
  assert.throws(() => render('{{$nope}}', {}), /undefined variable: \$nope/);
  assert.throws(() => render('{{.Config.Cmd.First}}', container), /can't evaluate field First in type slice/);
  assert.throws(() => render('{{lt .Name 3}}', container), /incompatible types for comparison/);
});

test('Go\'s details: and/or with nil, $x = in a range, index of a missing label, }} in a string, small floats', () => {
  assert.equal(render('{{if and .HostConfig.CapAdd .State.Running}}yes{{else}}no{{end}}', container), 'no');
  assert.equal(render('{{or .HostConfig.CapAdd "none"}}|{{and .State.Running .Name}}', container), 'none|/web');
  assert.equal(render('{{$n := 0}}{{range .Config.Env}}{{$n = .}}{{end}}{{$n}}', container), 'B=2');
  assert.equal(render('[{{index .Config.Labels "missing"}}]', container), '[]');
  assert.equal(render('{{printf "}}%s{{" .Name}}', container), '}}/web{{');
  assert.equal(render('{{.}}', 1.5e-7), '1.5e-07');
  assert.equal(render('{{.}}', 2.5e21), '2.5e+21');
});

test('a table format over an empty listing still has its header', async () => {
  const { formatList } = await import('../../cli/list-format.js');
  assert.equal(formatList('table {{.Names}}\\t{{.RunningFor}}', [], { RunningFor: 'CREATED' }, () => ''), 'NAMES     CREATED\n');
  assert.equal(formatList('{{.Names}}', [], {}, () => ''), '');
});

