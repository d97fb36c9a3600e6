/**
 * The CLI's first import: refuses a Node older than package.json's engines with one line, before
 * any other module loads. argon2's native addon, loaded next, crashes older Nodes with a bare
 * "Segmentation fault" (Node 20), and npm only warns about engines.
 */
export const MINIMUM_NODE_MAJOR = 24;

const major = Number(process.versions.node.split('.')[0]);
if (major < MINIMUM_NODE_MAJOR) {
  process.stderr.write(`latchkey: Node ${process.versions.node} is too old; Latchkey needs Node ${MINIMUM_NODE_MAJOR} or later (see the README's quick start)\n`);
  process.exit(1);
}
