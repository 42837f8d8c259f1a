//! One volume over several iSCSI paths: the path set built from Cinder's
//! `connection_info` (the `target_portals`/`target_iqns`/`target_luns` lists) or
//! from SendTargets discovery on the main portal, the LU identity check that keeps
//! a wrong LU out, path selection policies, failover of a failed command to another
//! path, a path checker that reconnects failed paths, failback to the main portal
//! once its network recovers, and queueing while no path is alive. It exposes the
//! same block API as a single session. Its implementation lands with the multipath
//! issue; the crate exists now so the dependency graph is fixed from the start.
#![forbid(unsafe_code)]
