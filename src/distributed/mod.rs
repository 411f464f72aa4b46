//! Data-parallel training across processes: whether this process was started by an MPI
//! launcher, and (Cargo feature `mpi`) the MPI transport `mpi::MpiCollective`.
//!
//! The training loop talks to the other ranks only through
//! [`Collective`](crate::runtime::collective::Collective); this module is where the
//! process-level implementations live.

#[cfg(feature = "mpi")]
pub mod mpi;

/// The environment variables by which MPI launchers tell a process its place in a job:
/// Open MPI's `mpirun` (`OMPI_COMM_WORLD_SIZE`, `OMPI_COMM_WORLD_RANK`), PMIx-based
/// launchers (`PMIX_RANK`: Open MPI 5, Slurm's `srun --mpi=pmix`), MPICH's and Intel MPI's
/// Hydra and Slurm's PMI-1/PMI-2 (`PMI_RANK`, `PMI_SIZE`), and MVAPICH's `mpirun_rsh`
/// (`MV2_COMM_WORLD_RANK`).
pub const LAUNCHER_VARIABLES: &[&str] = &[
    "OMPI_COMM_WORLD_SIZE",
    "OMPI_COMM_WORLD_RANK",
    "PMIX_RANK",
    "PMI_RANK",
    "PMI_SIZE",
    "MV2_COMM_WORLD_RANK",
];

/// Whether this process was started by an MPI launcher (`mpirun`, `mpiexec`, `srun` with
/// MPI support): one of [`LAUNCHER_VARIABLES`] is set (and not empty). A process started
/// by hand is not, even where MPI could run it as a group of one (singleton init); the
/// caller decides what that means, e.g. training without MPI. Reads only the environment:
/// cheap, and works in builds without the `mpi` feature (where it lets `xenon train` say
/// that the binary was built without MPI rather than train `N` unrelated copies).
///
/// Ask before initializing MPI: Open MPI's singleton init sets `OMPI_COMM_WORLD_SIZE` and
/// its kin in the process's own environment, after which this returns true.
pub fn launched_by_mpi() -> bool {
    launched_by_mpi_in(|name| std::env::var_os(name))
}

/// [`launched_by_mpi`] over the environment that `var` reads (tests).
fn launched_by_mpi_in(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    LAUNCHER_VARIABLES
        .iter()
        .any(|name| var(name).is_some_and(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, OsString)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn each_launcher_is_recognised() {
        assert!(!launched_by_mpi_in(env(&[])));
        assert!(!launched_by_mpi_in(env(&[("OMPI_COMM_WORLD_SIZE", "")])));
        assert!(!launched_by_mpi_in(env(&[("SLURM_PROCID", "0")])));
        for var in LAUNCHER_VARIABLES {
            assert!(launched_by_mpi_in(env(&[(var, "2")])), "{var}");
        }
    }
}
