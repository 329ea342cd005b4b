import { afterEach, beforeEach, describe, test } from "vitest";
import type { SessionStore } from "../../src/core/store.js";
import {
  describeStoreConformance as describeWith,
  type StoreProbes,
} from "../../src/testing/store-conformance.js";

/** The exported store conformance kit (`coatcheck/testing`), bound to vitest for this repo's stores. */
export function describeStoreConformance(
  name: string,
  makeStore: () => SessionStore | Promise<SessionStore>,
  probes: StoreProbes = {},
): void {
  describeWith(name, makeStore, { describe, test, beforeEach, afterEach }, probes);
}
