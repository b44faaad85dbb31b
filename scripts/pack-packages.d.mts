export declare const ROOT: string;
export interface WorkspacePackage {
  name: string;
  version: string;
  dir: string;
  private: boolean;
}
export interface PackedPackage extends WorkspacePackage {
  /** Absolute path of the .tgz. */
  tarball: string;
}
export declare function pnpmCommand(): { command: string; prefix: string[] };
export declare function publishedPackages(): WorkspacePackage[];
export declare function packPackages(destination: string, names?: string[]): PackedPackage[];
