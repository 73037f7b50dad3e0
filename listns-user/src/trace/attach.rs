//! Attaching the hooks: which kernel hooks there are, what is missed
//! without each, and the rule that hooks that only work together are
//! attached together or not at all.

use aya::{
    Ebpf,
    maps::Array,
    programs::{KProbe, ProgramError, RawTracePoint, TracePoint},
};

/// A kernel hook.
#[derive(Debug)]
pub struct Hook {
    pub program: &'static str,
    /// `None`: raw tracepoint named `name`.
    category: Option<&'static str>,
    name: &'static str,
}

/// Hooks attached together, all or none, and what is missed without them.
/// A syscall's enter hook is useless without its exit hook: alone, it
/// would only fill the map of calls in flight.
pub struct Group {
    pub hooks: &'static [Hook],
    misses: &'static str,
}

const fn raw(name: &'static str) -> Hook {
    Hook {
        program: name,
        category: None,
        name,
    }
}

const fn syscall(name: &'static str) -> Hook {
    Hook {
        program: name,
        category: Some("syscalls"),
        name,
    }
}

pub const GROUPS: [Group; 4] = [
    Group {
        hooks: &[raw("sched_process_fork")],
        misses: "namespaces created or entered by fork/clone/clone3 children",
    },
    Group {
        hooks: &[raw("sched_process_exit")],
        misses: "processes leaving namespaces when they exit",
    },
    Group {
        hooks: &[syscall("sys_enter_unshare"), syscall("sys_exit_unshare")],
        misses: "namespaces created by unshare(2)",
    },
    Group {
        hooks: &[syscall("sys_enter_setns"), syscall("sys_exit_setns")],
        misses: "processes joining namespaces with setns(2)",
    },
];

/// The kprobe that forgets namespaces as their inode is freed (kernels
/// without namespace ids; listns-ebpf/src/forget.rs).
pub const FORGET_ON_FREE: &str = "forget_freed_inum";

/// On a kernel without namespace ids: attaches `FORGET_ON_FREE` if it can
/// (adding it to `attached`) and says how dead namespaces are forgotten.
/// Without the kprobe the exit hook's guess and userspace's liveness sweep
/// remain: a fallback, not a missing hook.
pub fn inode_keys_note(ebpf: &mut Ebpf, attached: &mut Vec<&'static str>) -> String {
    let how = match forget_on_free(ebpf) {
        Ok(()) => {
            attached.push(FORGET_ON_FREE);
            "dead namespaces are forgotten as the kernel frees their inode \
             (kprobe on proc_free_inum): one reusing it is reported as created"
                .to_string()
        }
        Err(e) => format!(
            "no kprobe on proc_free_inum ({e}): a dead namespace is forgotten when its \
             last task exits, otherwise (two tasks holding it exit at once, an fd or a \
             bind mount outlived its tasks) by the next liveness sweep; a namespace \
             reusing its inode before then is reported as joined, not created"
        ),
    };
    format!(
        "this kernel has no namespace ids (before 6.18): namespaces are keyed by inode, \
         which the kernel reuses; {how}"
    )
}

/// Attaches `FORGET_ON_FREE` to `proc_free_inum` and tells the exit hook
/// (map `FORGET_ON_FREE`) to leave forgetting to it.
fn forget_on_free(ebpf: &mut Ebpf) -> Result<(), String> {
    let program: &mut KProbe = ebpf
        .program_mut(FORGET_ON_FREE)
        .ok_or("not in the eBPF object")?
        .try_into()
        .map_err(|e: ProgramError| e.to_string())?;
    program.load().map_err(|e| e.to_string())?;
    if let Err(e) = program.attach("proc_free_inum", 0) {
        let _ = program.unload();
        return Err(e.to_string());
    }
    let flag = ebpf
        .map_mut("FORGET_ON_FREE")
        .ok_or("map FORGET_ON_FREE not in the eBPF object")?;
    let mut flag = Array::<_, u32>::try_from(flag).map_err(|e| e.to_string())?;
    flag.set(0, 1, 0).map_err(|e| e.to_string())
}

/// Attaches every hook of `group`, or, when one fails, unloads those
/// attached before it (and the failed one, which may be loaded) and says
/// what is missing.
pub fn all_or_nothing<C, E: std::fmt::Display>(
    ctx: &mut C,
    group: &Group,
    attach: impl Fn(&mut C, &Hook) -> Result<(), E>,
    unload: impl Fn(&mut C, &Hook),
) -> Result<(), String> {
    for (i, hook) in group.hooks.iter().enumerate() {
        if let Err(e) = attach(ctx, hook) {
            let mut msg = format!("{} not attached ({e})", hook.name);
            for done in &group.hooks[..i] {
                unload(ctx, done);
                msg.push_str(&format!(", {} detached with it", done.name));
            }
            unload(ctx, hook);
            msg.push_str(&format!(": missing {}", group.misses));
            return Err(msg);
        }
    }
    Ok(())
}

/// Detaches and unloads a hook's program (nothing if it was never loaded).
pub fn unload(ebpf: &mut Ebpf, hook: &Hook) {
    let result = match ebpf.program_mut(hook.program) {
        Some(aya::programs::Program::TracePoint(p)) => p.unload(),
        Some(aya::programs::Program::RawTracePoint(p)) => p.unload(),
        _ => return,
    };
    if let Err(e) = result
        && !matches!(e, aya::programs::ProgramError::NotLoaded)
    {
        log::warn!("unloading {}: {e}", hook.program);
    }
}

pub fn attach(ebpf: &mut Ebpf, hook: &Hook) -> Result<(), aya::programs::ProgramError> {
    let program = ebpf
        .program_mut(hook.program)
        .ok_or_else(|| aya::programs::ProgramError::UnexpectedProgramType)?;
    match hook.category {
        None => {
            let p: &mut RawTracePoint = program.try_into()?;
            p.load()?;
            p.attach(hook.name)?;
        }
        Some(category) => {
            let p: &mut TracePoint = program.try_into()?;
            p.load()?;
            p.attach(category, hook.name)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attaches by name into `log`, failing for the names in `broken`.
    fn run(group: &Group, broken: &[&str]) -> (Result<(), String>, Vec<String>) {
        let mut log = Vec::new();
        let result = all_or_nothing(
            &mut log,
            group,
            |log: &mut Vec<String>, h: &Hook| {
                if broken.contains(&h.name) {
                    return Err("refused");
                }
                log.push(format!("+{}", h.name));
                Ok(())
            },
            |log: &mut Vec<String>, h: &Hook| log.push(format!("-{}", h.name)),
        );
        (result, log)
    }

    #[test]
    fn a_pair_whose_exit_hook_fails_is_detached_whole() {
        let (result, log) = run(&GROUPS[2], &["sys_exit_unshare"]);
        assert_eq!(
            log,
            [
                "+sys_enter_unshare",
                "-sys_enter_unshare",
                "-sys_exit_unshare"
            ]
        );
        let msg = result.unwrap_err();
        assert!(
            msg.starts_with("sys_exit_unshare not attached (refused)"),
            "{msg}"
        );
        assert!(msg.contains("sys_enter_unshare detached with it"), "{msg}");
        assert!(
            msg.ends_with("missing namespaces created by unshare(2)"),
            "{msg}"
        );
    }

    #[test]
    fn a_pair_whose_enter_hook_fails_never_attaches_its_exit_hook() {
        let (result, log) = run(&GROUPS[3], &["sys_enter_setns"]);
        assert_eq!(log, ["-sys_enter_setns"]);
        assert!(!result.unwrap_err().contains("detached with it"));
    }

    #[test]
    fn a_whole_pair_attaches() {
        let (result, log) = run(&GROUPS[3], &[]);
        assert!(result.is_ok());
        assert_eq!(log, ["+sys_enter_setns", "+sys_exit_setns"]);
    }

    #[test]
    fn every_syscall_enter_hook_is_paired_with_its_exit_hook() {
        for group in &GROUPS {
            let enters = group
                .hooks
                .iter()
                .filter(|h| h.name.starts_with("sys_enter_"));
            for enter in enters {
                let exit = enter.name.replace("sys_enter_", "sys_exit_");
                assert!(
                    group.hooks.iter().any(|h| h.name == exit),
                    "{} attached without {exit}",
                    enter.name
                );
            }
        }
    }
}
