/** The znode layout (docs/znodes.md), in one place. */
export interface ClusterPaths {
  cluster: string;
  lock: string;
  breadcrumb: string;
  members: string;
  member(id: string): string;
  control: string;
  history: string;
}

export function clusterPaths(root: string, cluster: string): ClusterPaths {
  const base = `${root === '/' ? '' : root}/${cluster}`;
  return {
    cluster: base,
    lock: `${base}/lock`,
    breadcrumb: `${base}/breadcrumb`,
    members: `${base}/members`,
    member: (id) => `${base}/members/${id}`,
    control: `${base}/control`,
    history: `${base}/history`,
  };
}
