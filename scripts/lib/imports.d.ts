// Types of imports.js for the tests (test/unit/layers.test.ts).
export const LAYERS: Record<string, number>;
export function layerOf(file: string): string;
export function importGraph(src: string): Map<string, string[]>;
export function mermaid(graph: Map<string, string[]>): string;
