// Hoodiecrow (an in-memory IMAP server for client tests) standing in for Gmail's IMAP:
//   node launch.js <port> <storage.json>
// Its X-GM-EXT-1 plugin answers X-GM-MSGID and X-GM-LABELS but never advertises the
// capability, so this registers it; nothing else is added (X-GM-RAW and X-GM-THRID stay
// unsupported, as hoodiecrow documents: the server refuses them).
"use strict";

const fs = require("fs");
const hoodiecrow = require("hoodiecrow-imap");

const [port, storagePath] = process.argv.slice(2);
const server = hoodiecrow({
    plugins: ["ID", "ENABLE", "CONDSTORE", "SPECIAL-USE", "UIDPLUS", "X-GM-EXT-1",
              gmail => gmail.registerCapability("X-GM-EXT-1")],
    storage: JSON.parse(fs.readFileSync(storagePath, "utf-8")),
});
server.listen(Number(port), "127.0.0.1", () => console.log("listening"));
