// Runs the compiled demo (generated/out/client.js) against API_URL as the user of TOKEN and
// prints what it got as one JSON line (tests/test_typescript.py reads it).
import { demo } from "./generated/out/client.js";

const outcome = await demo(process.env.API_URL, process.env.TOKEN);
console.log(JSON.stringify(outcome));
