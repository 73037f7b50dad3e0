/* The kernel structs listns resolves offsets in (trace/offsets.rs), laid out
 * like Linux 6.18's where it matters (nsproxy inside an anonymous union,
 * ns_common.ns_id), shrunk to what BTF needs. `gcc -gbtf` turns this into the
 * btf fuzz target's seed; see fuzz/seeds/make-btf-seed.sh. */
struct ns_common { unsigned int ns_type; int count; void *ops; unsigned int inum; unsigned long ns_id; };
struct uts_namespace { int pad; struct ns_common ns; };
struct ipc_namespace { long pad[2]; struct ns_common ns; };
struct mnt_namespace { struct ns_common ns; };
struct net { int refcount; struct ns_common ns; };
struct cgroup_namespace { struct ns_common ns; };
struct time_namespace { void *user_ns; struct ns_common ns; };
struct pid_namespace { int pad[3]; struct ns_common ns; };
struct user_namespace { void *uid_map; struct ns_common ns; };
struct nsproxy {
	int count;
	struct uts_namespace *uts_ns;
	struct ipc_namespace *ipc_ns;
	struct mnt_namespace *mnt_ns;
	struct pid_namespace *pid_ns_for_children;
	struct net *net_ns;
	struct time_namespace *time_ns;
	struct time_namespace *time_ns_for_children;
	struct cgroup_namespace *cgroup_ns;
};
struct upid { int nr; struct pid_namespace *ns; };
struct pid { int count; unsigned int level; struct upid numbers[1]; };
typedef struct { unsigned int val; } kuid_t;
struct cred { int usage; kuid_t uid; struct user_namespace *user_ns; };
struct task_struct {
	unsigned int state;
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct pid *thread_pid;
	const struct cred *real_cred;
	union {
		struct { int fs; struct nsproxy *nsproxy; };
		long pad[2];
	};
};
struct task_struct *use_task(struct task_struct *t) { return t; }
