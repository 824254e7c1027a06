//! Multi-node scenarios: in-process clusters over an in-memory transport with a
//! controlled clock, and docker compose clusters over real QUIC.
//!
//! Empty until the cluster layer exists (membership, replication); the crate is
//! part of the workspace now so that `scripts/test.sh` already runs it.
