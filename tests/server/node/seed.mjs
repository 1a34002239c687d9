// The seed scenario, driven by the official Node Copilot SDK (@github/copilot-sdk, pinned in
// package.json) against parley-runtime: three sessions (two on echo:alpha, one on echo:beta
// with the id "user-123-chat"), an opening message and a follow-up in each, list, delete,
// list, stop. Prints one JSON object on stdout; tests/server/test_node_sdk.py asserts on it.
//
// usage: node seed.mjs <path to parley-runtime> <store url> [log level]
//
// The runtime is always the explicit path given here (RuntimeConnection.forStdio({path})): the
// SDK never resolves, copies or starts its own bundled runtime. The test installs the SDK with
// --omit=optional, so that bundled runtime (the @github/copilot-sdk-<platform> package) is not
// even on disk.

import { approveAll, CopilotClient, RuntimeConnection } from "@github/copilot-sdk";

const [runtimePath, storeUrl, logLevel = "info"] = process.argv.slice(2);
if (!runtimePath || !storeUrl) {
  process.stderr.write("usage: node seed.mjs <path to parley-runtime> <store url> [log level]\n");
  process.exit(2);
}

const SEND_TIMEOUT_MS = 30_000;

// The child's environment: ours, minus what could make the SDK pick another runtime or transport.
const env = { ...process.env };
delete env.COPILOT_CLI_PATH;
delete env.COPILOT_SDK_DEFAULT_CONNECTION;

const client = new CopilotClient({
  connection: RuntimeConnection.forStdio({ path: runtimePath, args: ["--store", storeUrl], env }),
  logLevel,
});

const plan = [
  { key: "first", model: "echo:alpha", opening: "You are helping with a Python project" },
  { key: "second", model: "echo:alpha", opening: "How do I set up tsconfig?" },
  {
    key: "chat",
    model: "echo:beta",
    sessionId: "user-123-chat",
    opening: "How do I initialize a module?",
  },
];
// The same follow-up everywhere: only its own history can answer it, so the replies must differ.
const FOLLOW_UP = "What was the first thing I asked you?";

const describe = (event) =>
  event === undefined
    ? null
    : { type: event.type, content: event.data.content, messageId: event.data.messageId };

const listIds = async () => (await client.listSessions()).map((meta) => meta.sessionId);

await client.start();
// The child the SDK spawned (a private field in the SDK's types): record what it ran and how it
// ended. The SDK's stop() sends runtime.shutdown, then kills the child (SIGTERM) if it is still
// running, without waiting for it to exit on its own.
const child = client.cliProcess;
const runtimeSpawned = child ? child.spawnfile : null;
const runtimeExit = new Promise((resolve) => {
  if (!child) {
    resolve(null);
  } else if (child.exitCode !== null || child.signalCode !== null) {
    resolve({ code: child.exitCode, signal: child.signalCode });
  } else {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  }
});

// On any failure: kill the runtime at once, then fail (exit 1, the error on stderr).
const results = {};
let listedBefore;
let listedAfter;
try {
  const sessions = [];
  for (const step of plan) {
    const config = { model: step.model, onPermissionRequest: approveAll };
    if (step.sessionId) {
      config.sessionId = step.sessionId;
    }
    sessions.push({ step, session: await client.createSession(config) });
  }

  for (const { step, session } of sessions) {
    results[step.key] = {
      sessionId: session.sessionId,
      model: step.model,
      opening: step.opening,
      followUp: FOLLOW_UP,
      openingReply: describe(await session.sendAndWait(step.opening, SEND_TIMEOUT_MS)),
    };
  }
  for (const { step, session } of sessions) {
    results[step.key].followUpReply = describe(await session.sendAndWait(FOLLOW_UP, SEND_TIMEOUT_MS));
  }

  listedBefore = await listIds();
  await client.deleteSession("user-123-chat");
  listedAfter = await listIds();
} catch (error) {
  await client.forceStop();
  throw error;
}
const stopErrors = (await client.stop()).map((error) => String(error.message ?? error));

process.stdout.write(
  `${JSON.stringify({
    sessions: results,
    listedBefore,
    listedAfter,
    stopErrors,
    runtimeSpawned,
    runtimeExit: await runtimeExit,
  })}\n`,
);
