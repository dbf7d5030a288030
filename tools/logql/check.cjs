// Reads a JSON array of LogQL expressions on stdin and reports any that do
// not parse with @grafana/lezer-logql (the grammar Grafana's editor uses).
const { parser } = require('@grafana/lezer-logql');
const exprs = JSON.parse(require('fs').readFileSync(0, 'utf8'));
let bad = 0;
for (const e of exprs) {
  const tree = parser.parse(e);
  let err = null;
  tree.iterate({ enter: (n) => { if (n.type.isError && err === null) err = n.from; } });
  if (err !== null) { bad++; console.log(`ERROR at ${err}: ${e}`); }
}
console.log(`${exprs.length - bad} of ${exprs.length} LogQL expressions parse`);
process.exit(bad ? 1 : 0);
