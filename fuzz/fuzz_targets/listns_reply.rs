//! The `listns(2)` reply parser (lifecycle/listns_syscall.rs `collect`),
//! against a fake kernel driven by the input.
//!
//! An honest kernel (ids ascending, only those above the request's, while
//! namespaces come and go between pages): every id alive throughout is
//! listed, nothing is listed twice or out of order, nothing that never
//! existed is listed, and the pages ask for ever higher ids.
//!
//! A kernel answering anything (counts past the buffer, ids in any order,
//! errors): no panic, no endless paging, and the result is exactly the ids
//! handed over up to the page that ends it.
#![no_main]

use std::collections::BTreeSet;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use listns::fuzzing::{ListnsError, NsIdReq, NsType, listns_collect};

#[derive(Arbitrary, Debug)]
enum Change {
    Create(u16),
    Destroy(u16),
}

#[derive(Arbitrary, Debug)]
enum Reply {
    Ids { claimed: u16, ids: Vec<u64> },
    Error,
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let (Ok(honest), Ok(page), Ok(ty)) = (
        bool::arbitrary(&mut u),
        u8::arbitrary(&mut u),
        u8::arbitrary(&mut u),
    ) else {
        return;
    };
    let page = page as usize % 9; // 0 is taken as 1
    let ty = (ty % 9 != 8).then(|| NsType::ALL[ty as usize % 8]);
    let mut calls: Vec<NsIdReq> = Vec::new();
    let check_req = |req: &NsIdReq, calls: &[NsIdReq]| {
        assert_eq!(req.size, 32);
        assert_eq!(req.ns_type, ty.map_or(0, NsType::clone_flag));
        match calls.last() {
            None => assert_eq!(req.ns_id, 0),
            Some(prev) => assert!(req.ns_id > prev.ns_id, "paging went back"),
        }
    };

    if honest {
        // Ids are never 0 and never reused (kernel ns_id).
        let start: BTreeSet<u64> = Vec::<u16>::arbitrary(&mut u)
            .unwrap_or_default()
            .into_iter()
            .map(|i| i as u64 + 1)
            .collect();
        let changes: Vec<Vec<Change>> = Vec::arbitrary(&mut u).unwrap_or_default();
        let mut alive = start.clone();
        let mut ever = start.clone();
        let mut stable = start;
        let mut round = 0;
        let got = listns_collect(ty, page, |req, buf| {
            check_req(req, &calls);
            calls.push(*req);
            assert!(calls.len() <= ever.len() + 2, "endless paging");
            for c in changes.get(round).into_iter().flatten() {
                match *c {
                    Change::Create(i) => {
                        let id = i as u64 + 1;
                        if ever.insert(id) {
                            alive.insert(id);
                        }
                    }
                    Change::Destroy(i) => {
                        alive.remove(&(i as u64 + 1));
                        stable.remove(&(i as u64 + 1));
                    }
                }
            }
            round += 1;
            let mut n = 0;
            for (slot, &id) in buf.iter_mut().zip(alive.range(req.ns_id + 1..)) {
                *slot = id;
                n += 1;
            }
            Ok(n)
        })
        .expect("an honest kernel's answers");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        assert!(got.iter().all(|id| ever.contains(id)));
        for id in &stable {
            assert!(got.contains(id), "{id} alive throughout but not listed");
        }
        return;
    }

    let replies: Vec<Reply> = Vec::arbitrary(&mut u).unwrap_or_default();
    let mut handed: Vec<u64> = Vec::new();
    let mut i = 0;
    let got = listns_collect(ty, page, |req, buf| {
        check_req(req, &calls);
        calls.push(*req);
        assert!(calls.len() <= replies.len() + 1, "endless paging");
        let reply = replies.get(i);
        i += 1;
        match reply {
            None => Ok(0),
            Some(Reply::Error) => Err(ListnsError::Os("EINVAL".into())),
            Some(Reply::Ids { claimed, ids }) => {
                let n = ids.len().min(buf.len());
                buf[..n].copy_from_slice(&ids[..n]);
                // What the parser may use: no more than the buffer holds.
                handed.extend_from_slice(&buf[..(*claimed as usize).min(buf.len())]);
                Ok(*claimed as usize)
            }
        }
    });
    match replies.get(i - 1) {
        Some(Reply::Error) => assert!(got.is_err()),
        _ => assert_eq!(got.expect("no error was answered"), handed),
    }
});
