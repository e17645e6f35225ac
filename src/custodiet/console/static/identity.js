// "Who am I" for the desk and the workbench: the user's OpenSSH private key file, read with a file
// input, parsed and imported into WebCrypto here; the principal is the registered one whose public
// key it is. The key is held in memory by this page only, never stored, never sent.

import { getJSON } from "./api.js";
import { $, say } from "./dom.js";
import { importPrivateKey } from "./sshkey.js";

export const me = { key: null, principal: null, role: null, origin: null };

export function keyPanel(onReady) {
  const input = $("#keyfile");
  const status = $("#whoami");
  input.addEventListener("change", async () => {
    me.key = null;
    me.principal = null;
    const file = input.files[0];
    if (!file) return;
    try {
      const imported = await importPrivateKey(await file.text());
      input.value = "";
      const [info, principals] = await Promise.all([getJSON("/v1/info"), getJSON("/v1/principals")]);
      const match = principals.find((p) => p.pubkey === imported.line);
      if (!match) {
        say(status, "This key is not the key of any registered principal.", "bad");
        return;
      }
      Object.assign(me, { key: imported.key, principal: match.name, role: match.role, origin: info.origin });
      say(status, `Signing as ${match.name} (${match.role}), key ${match.fingerprint}. The key stays in this page.`, "ok");
      await onReady();
    } catch (error) {
      say(status, `Key not usable: ${error.message}`, "bad");
    }
  });
}
