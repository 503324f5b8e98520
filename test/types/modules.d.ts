// Types of the JavaScript modules the tests import (no declarations of their own).
declare module 'semver' {
  const semver: { subset(a: string, b: string): boolean; satisfies(version: string, range: string): boolean };
  export default semver;
}
