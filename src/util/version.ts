/** The package's version (package.json ships with the package: `files` always includes it). */
export const PACKAGE_VERSION: string = (require('../../package.json') as { version: string }).version;
