// The layers of src/ (docs/architecture.md): a folder may import folders below it, never one
// beside or above it, so that no folder import runs back up and no loop forms between folders.
// eslint.config.js turns this table into no-restricted-imports rules, one block per folder.

/** Lowest first. Folders on one line are siblings: neither imports the other. */
export const LAYERS = [
  ["contracts"],
  ["config"],
  ["logging", "metrics"],
  ["auth"],
  ["cluster"],
  ["channels"],
  ["jobs"],
  ["gateway", "http"],
  ["app"],
];

/** Folders that stand apart: the client SDK ships to browsers and speaks only the contracts. */
export const ISOLATED = { client: ["contracts"] };

const ALL = [...LAYERS.flat(), ...Object.keys(ISOLATED)];

/** The folders `folder` must not import. */
export function forbiddenFor(folder) {
  if (ISOLATED[folder]) return ALL.filter((other) => other !== folder && !ISOLATED[folder].includes(other));
  const level = LAYERS.findIndex((layer) => layer.includes(folder));
  return ALL.filter(
    (other) =>
      other !== folder &&
      (Object.hasOwn(ISOLATED, other) || LAYERS.findIndex((layer) => layer.includes(other)) >= level),
  );
}

/** no-restricted-imports blocks for src/<folder>/**: relative imports into a forbidden folder. */
export function layerRules() {
  return ALL.map((folder) => ({
    files: [`src/${folder}/**/*.ts`],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: forbiddenFor(folder).map((other) => ({
            group: [`../${other}/**`, `../../${other}/**`, `../../../${other}/**`],
            message: `src/${folder}/ may not import src/${other}/ (layers in eslint-layers.js, docs/architecture.md): move the code down, or pass it in from src/app/.`,
          })),
        },
      ],
    },
  }));
}
