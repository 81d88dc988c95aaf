import { registerAbuseIpdbCommand } from './sim/abuseipdb.js';
import { registerCymruCommand } from './sim/cymru.js';
import { registerDShieldCommand } from './sim/dshield.js';
import { registerGreyNoiseCommand } from './sim/greynoise.js';
import { registerInternetDbCommand } from './sim/internetdb.js';
import { registerLogsCommand } from './sim/logs.js';
import { registerMaxmindCommand } from './sim/maxmind.js';
import { registerMmdbCommand } from './sim/mmdb.js';
import { registerVirusTotalCommand } from './sim/virustotal.js';
import { newProgram, runProgram } from './main.js';

const program = newProgram('cowrie-sim', 'Local stand-ins for the real services (Team Cymru, GreyNoise, VirusTotal, MaxMind downloads, DShield, AbuseIPDB, Shodan InternetDB), MaxMind test databases and synthetic Cowrie logs — for tests, benchmarks, demos and trying a setup offline.');
registerLogsCommand(program);
registerMmdbCommand(program);
registerCymruCommand(program);
registerGreyNoiseCommand(program);
registerVirusTotalCommand(program);
registerMaxmindCommand(program);
registerDShieldCommand(program);
registerAbuseIpdbCommand(program);
registerInternetDbCommand(program);

await runProgram(program);
