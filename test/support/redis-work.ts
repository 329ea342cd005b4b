/**
 * What a Lua script makes Redis do, counted (never timed): the script is run wrapped in a shim
 * that counts each `redis.call` and the elements of every array reply it gets (a `ZRANGE 0 -1`
 * of n members counts n, a `ZSCORE` 0). The wrapped script's own reply is passed through.
 */

export interface ScriptWork {
  /** Commands the script ran. */
  calls: number;
  /** Elements of the array replies those commands returned. */
  elements: number;
}

/** `script` wrapped so that it replies `{calls, elements, its own reply}`. */
export function countingScript(script: string): string {
  return `
local counted = redis
local calls, elements = 0, 0
local redis = setmetatable({
  call = function(...)
    local r = counted.call(...)
    calls = calls + 1
    if type(r) == 'table' and r.ok == nil and r.err == nil then elements = elements + #r end
    return r
  end,
}, { __index = counted })
local function body()
${script}
end
local reply = body()
return { calls, elements, reply }
`;
}

/**
 * A send function (key, args) that runs every EVALSHA/EVAL of `script` as the counting version
 * through `send`, and keeps the work of the last one in `last`.
 */
export function countingSend(
  send: (args: string[]) => Promise<unknown>,
  script: string,
): { send: (key: string, args: string[]) => Promise<unknown>; last: ScriptWork } {
  const wrapped = countingScript(script);
  const state = { last: { calls: 0, elements: 0 } as ScriptWork };
  return {
    get last() {
      return state.last;
    },
    send: async (_key, args) => {
      const [command, , ...rest] = args;
      if (command !== "EVALSHA" && command !== "EVAL") return send(args);
      const reply = (await send(["EVAL", wrapped, ...rest])) as [number, number, unknown];
      state.last = { calls: Number(reply[0]), elements: Number(reply[1]) };
      return reply[2];
    },
  } as { send: (key: string, args: string[]) => Promise<unknown>; last: ScriptWork };
}
