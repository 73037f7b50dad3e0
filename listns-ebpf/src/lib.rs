// Empty host-side library: listns-user lists this crate as a build
// dependency so that cargo rebuilds the embedded eBPF object when it changes
// (the aya-template pattern). The programs are in main.rs.
#![no_std]
