package server

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"

	"regente.io/regente/pkg/certs"
	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/join"
	"regente.io/regente/pkg/kubeconfig"
)

// flannelRole is the ClusterRole bound to every node's flannel identity.
const flannelRole = "system:regente-flannel"

// joinRole lets unauthenticated agents reach the join endpoints.
const joinRole = "regente:join"

// clusterRoles grants regente's own node identities what upstream's
// bootstrap policy has no role for: flannel reads every node and writes
// its lease into its own node's annotations, and the network policy
// controller reads pods, namespaces and policies. It applies server-side on
// every start, so an upgrade that changes the rules takes effect.
func clusterRoles(adminKubeconfig string) component.Component {
	return component.Func("cluster-roles", func(ctx context.Context) error {
		_, client, err := kubeconfig.Client(adminKubeconfig)
		if err != nil {
			return err
		}
		apply := metav1.ApplyOptions{FieldManager: "regente", Force: true}
		role := rbacv1ac.ClusterRole(flannelRole).WithRules(
			rbacv1ac.PolicyRule().WithAPIGroups("").WithResources("nodes").WithVerbs("get", "list", "watch", "patch"),
			rbacv1ac.PolicyRule().WithAPIGroups("").WithResources("nodes/status").WithVerbs("patch"),
			// The network policy controller, which runs as the same
			// identity: a policy's peers are pods on any node.
			rbacv1ac.PolicyRule().WithAPIGroups("").WithResources("pods", "namespaces").WithVerbs("list", "watch"),
			rbacv1ac.PolicyRule().WithAPIGroups("networking.k8s.io").WithResources("networkpolicies").WithVerbs("list", "watch"),
		)
		if _, err := client.RbacV1().ClusterRoles().Apply(ctx, role, apply); err != nil {
			return fmt.Errorf("apply ClusterRole %s: %w", flannelRole, err)
		}
		binding := rbacv1ac.ClusterRoleBinding(flannelRole).
			WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName(flannelRole)).
			WithSubjects(rbacv1ac.Subject().WithAPIGroup(rbacv1.GroupName).WithKind(rbacv1.UserKind).WithName(certs.FlannelUser))
		if _, err := client.RbacV1().ClusterRoleBindings().Apply(ctx, binding, apply); err != nil {
			return fmt.Errorf("apply ClusterRoleBinding %s: %w", flannelRole, err)
		}
		// The join endpoints are reached before the agent has credentials;
		// they check the join token themselves.
		role = rbacv1ac.ClusterRole(joinRole).WithRules(
			rbacv1ac.PolicyRule().WithNonResourceURLs(join.PathCACerts, join.PathJoin, join.PathBootstrap, join.PathRotate).WithVerbs("get", "post"))
		if _, err := client.RbacV1().ClusterRoles().Apply(ctx, role, apply); err != nil {
			return fmt.Errorf("apply ClusterRole %s: %w", joinRole, err)
		}
		binding = rbacv1ac.ClusterRoleBinding(joinRole).
			WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName(joinRole)).
			WithSubjects(rbacv1ac.Subject().WithAPIGroup(rbacv1.GroupName).WithKind(rbacv1.GroupKind).WithName(user.AllUnauthenticated))
		if _, err := client.RbacV1().ClusterRoleBindings().Apply(ctx, binding, apply); err != nil {
			return fmt.Errorf("apply ClusterRoleBinding %s: %w", joinRole, err)
		}
		return nil
	})
}
