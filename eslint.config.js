// Lint: typescript-eslint's recommended rules over sources and tests.
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";
import { layerRules } from "./eslint-layers.js";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { languageOptions: { globals: globals.node } },
  // The live console runs in browsers.
  { files: ["console/**/*.js"], languageOptions: { globals: globals.browser } },
  // The k6 load-test scripts run in k6, not Node: only k6's globals.
  {
    files: ["load-tests/**/*.js"],
    languageOptions: {
      globals: {
        ...Object.fromEntries(Object.keys(globals.node).map((name) => [name, "off"])),
        __ENV: "readonly",
        __VU: "readonly",
        __ITER: "readonly",
        open: "readonly",
        console: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
      },
    },
  },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "off",
    },
  },
  // No folder of src/ imports one beside or above it.
  ...layerRules(),
);
