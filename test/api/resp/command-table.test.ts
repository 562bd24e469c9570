// The command table finds a command from the bytes of its name in any mix of cases, and
// nothing else: not a prefix, not a longer name, not a name with a Latin-1 letter that
// only a full lower-casing would fold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandTable, type CommandSpec } from '../../../src/api/resp/command-table.ts';
import { buildCommandTable } from '../../../src/api/resp/server.ts';

const spec = (name: string): CommandSpec => ({ name, arity: 1, flags: [], handler: () => {} });
const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

test('a command is found by its name in any case, and only by its name', () => {
  const table = new CommandTable();
  for (const name of ['get', 'getdel', 'set', 'client']) table.add(spec(name));
  for (const sent of ['get', 'GET', 'GeT', 'gET'])
    assert.equal(table.find(bytes(sent))?.name, 'get');
  assert.equal(table.find(bytes('GETDEL'))?.name, 'getdel');
  assert.equal(table.find(bytes('CLIENT'))?.name, 'client');
  for (const sent of ['', 'ge', 'gets', 'getx', 'g\u00c9t', 'GE\u00d4', 'get\r', 'Get ']) {
    assert.equal(table.find(bytes(sent)), undefined, JSON.stringify(sent));
  }
});

test('the table refuses a name twice and a name that is not lower-case ASCII', () => {
  const table = new CommandTable();
  table.add(spec('get'));
  assert.throws(() => table.add(spec('get')), /registered twice/);
  assert.throws(() => table.add(spec('Set')), /not lower-case ASCII/);
});

test("every command of the server's table is found by its upper-case name", () => {
  const table = buildCommandTable();
  assert.ok(table.all().length >= 37, `${table.all().length} commands`);
  for (const command of table.all()) {
    assert.equal(table.find(bytes(command.name.toUpperCase())), command, command.name);
  }
});
