/** The latchkey CLI's commands on the embedded store, through a running server's control socket (cli-commands.ts). */
import { cliCommands } from './cli-commands.js';

cliCommands('embedded');
