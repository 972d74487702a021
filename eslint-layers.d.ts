/** Types of eslint-layers.js (plain JS: eslint.config.js loads it without a build). */
export declare const LAYERS: readonly (readonly string[])[];
export declare const ISOLATED: Readonly<Record<string, readonly string[]>>;
export declare function forbiddenFor(folder: string): string[];
export declare function layerRules(): object[];
