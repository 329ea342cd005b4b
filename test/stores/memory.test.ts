import { MemoryStore } from "../../src/stores/memory.js";
import { describeStoreConformance } from "../conformance/store-suite.js";

describeStoreConformance("MemoryStore", () => new MemoryStore(), { userIndex: true });
