import { describeStoreConformance } from "coatcheck/testing";
import { afterEach, beforeEach, describe, test } from "vitest";
import { MapStore } from "../../examples/custom-store/map-store.js";

// What a third-party store author writes: the kit from the published package, under their runner.
describeStoreConformance("examples/custom-store MapStore", () => new MapStore(), {
  describe,
  test,
  beforeEach,
  afterEach,
});
