import type { V1Node } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  type EligibilityRule,
  type NodeVerdict,
  nodeEligibility,
  parseGoBool,
} from '../../../adapters/kubernetes/eligibility.js';
import {
  makeNode,
  tweakAddTaint,
  tweakDeleted,
  tweakExclude,
  tweakSetCondition,
  tweakSetReady,
  tweakToBeDeleted,
  tweakUnsetCondition,
} from './node-tweaks.js';

/*
 * Rows come from k8s.io/cloud-provider controllers/service/controller_test.go
 * at 46666112 (Test_respectsPredicates), each with lbsync's answer; where
 * lbsync differs from upstream, the row says why.
 */

describe('parseGoBool', () => {
  it.each([
    ['1', true],
    ['t', true],
    ['T', true],
    ['true', true],
    ['TRUE', true],
    ['True', true],
    ['0', false],
    ['f', false],
    ['F', false],
    ['false', false],
    ['FALSE', false],
    ['False', false],
    ['', undefined],
    ['yes', undefined],
    ['no', undefined],
    ['tRUE', undefined],
    [' true', undefined],
  ])('reads %j as Go strconv.ParseBool does: %s', (value, expected) => {
    expect(parseGoBool(value)).toBe(expected);
  });
});

describe('nodeEligibility', () => {
  const rows: [string, V1Node, NodeVerdict, EligibilityRule][] = [
    // Test_respectsPredicates rows (readiness aside: see the readiness block).
    ['serves a plain ready node', makeNode(), 'serving', 'eligible'],
    [
      'serves a node with an empty label map',
      makeNode((n) => {
        n.metadata = { ...n.metadata, labels: {} };
      }),
      'serving',
      'eligible',
    ],
    ['excludes on exclude label ""', makeNode(tweakExclude('')), 'excluded', 'exclude-label'],
    ['serves on exclude label "false"', makeNode(tweakExclude('false')), 'serving', 'eligible'],
    [
      'excludes on exclude label "true"',
      makeNode(tweakExclude('true')),
      'excluded',
      'exclude-label',
    ],
    [
      'excludes on exclude label "foo" (ParseBool error)',
      makeNode(tweakExclude('foo')),
      'excluded',
      'exclude-label',
    ],
    // The rest of strconv.ParseBool's grammar.
    ['serves on exclude label "False"', makeNode(tweakExclude('False')), 'serving', 'eligible'],
    ['serves on exclude label "FALSE"', makeNode(tweakExclude('FALSE')), 'serving', 'eligible'],
    ['serves on exclude label "0"', makeNode(tweakExclude('0')), 'serving', 'eligible'],
    ['serves on exclude label "f"', makeNode(tweakExclude('f')), 'serving', 'eligible'],
    ['excludes on exclude label "1"', makeNode(tweakExclude('1')), 'excluded', 'exclude-label'],
    [
      'excludes on exclude label "True"',
      makeNode(tweakExclude('True')),
      'excluded',
      'exclude-label',
    ],
    [
      'excludes on exclude label "no" (not Go boolean syntax)',
      makeNode(tweakExclude('no')),
      'excluded',
      'exclude-label',
    ],
    // Upstream drops the tainted node; lbsync drains it (its deliberate difference).
    [
      'drains a node tainted ToBeDeletedByClusterAutoscaler',
      makeNode(tweakToBeDeleted),
      'draining',
      'to-be-deleted-taint',
    ],
    [
      'drains on the taint whatever its effect',
      makeNode(tweakAddTaint('ToBeDeletedByClusterAutoscaler', 'NoExecute')),
      'draining',
      'to-be-deleted-taint',
    ],
    [
      'serves a node with only the autoscaler soft taint',
      makeNode(tweakAddTaint('DeletionCandidateOfClusterAutoscaler', 'PreferNoSchedule')),
      'serving',
      'eligible',
    ],
    [
      'matches the taint key exactly',
      makeNode(tweakAddTaint('tobedeletedbyclusterautoscaler')),
      'serving',
      'eligible',
    ],
    [
      'serves a cordoned node (unschedulable decides nothing)',
      makeNode(tweakAddTaint('node.kubernetes.io/unschedulable'), (n) => {
        n.spec = { ...n.spec, unschedulable: true };
      }),
      'serving',
      'eligible',
    ],
    // nodeNotDeletedPredicate.
    [
      'excludes a node with a deletionTimestamp',
      makeNode(tweakDeleted),
      'excluded',
      'deletion-timestamp',
    ],
    // Precedence: the strongest verdict wins.
    [
      'excludes, not drains, a labelled and tainted node',
      makeNode(tweakExclude('true'), tweakToBeDeleted),
      'excluded',
      'exclude-label',
    ],
    [
      'names deletion first for a deleted, labelled node',
      makeNode(tweakExclude(''), tweakDeleted),
      'excluded',
      'deletion-timestamp',
    ],
  ];
  it.each(rows)('%s', (_name, node, verdict, rule) => {
    expect(nodeEligibility(node)).toMatchObject({ verdict, rule });
  });

  // Upstream's allNodePredicates still has nodeReadyPredicate, but no sync path
  // uses it since StableLoadBalancerNodeSet: readiness decides nothing.
  it.each([
    ['Ready=False', makeNode(tweakSetReady(false))],
    ['Ready=Unknown', makeNode(tweakSetCondition('Ready', 'Unknown'))],
    ['no Ready condition', makeNode(tweakUnsetCondition('Ready'))],
    ['an empty Node object', {} as V1Node],
  ])('keeps serving a node with %s: the health check decides', (_name, node) => {
    expect(nodeEligibility(node)).toMatchObject({ verdict: 'serving', rule: 'eligible' });
  });

  it('names the label and its value in the detail line', () => {
    expect(nodeEligibility(makeNode(tweakExclude('foo'))).detail).toBe(
      'label node.kubernetes.io/exclude-from-external-load-balancers="foo"',
    );
    expect(nodeEligibility(makeNode(tweakToBeDeleted)).detail).toContain(
      'taint ToBeDeletedByClusterAutoscaler:NoSchedule',
    );
  });

  it('ignores the exclude label when ignoreExcludeLabel is set, but not the taint or deletion', () => {
    const opts = { ignoreExcludeLabel: true };
    expect(nodeEligibility(makeNode(tweakExclude('true')), opts).verdict).toBe('serving');
    expect(nodeEligibility(makeNode(tweakExclude('true'), tweakToBeDeleted), opts).verdict).toBe(
      'draining',
    );
    expect(nodeEligibility(makeNode(tweakDeleted), opts).verdict).toBe('excluded');
  });

  it('serves every node when nodeEligibility is off', () => {
    const node = makeNode(tweakExclude('true'), tweakToBeDeleted, tweakDeleted);
    expect(nodeEligibility(node, { nodeEligibility: false })).toMatchObject({
      verdict: 'serving',
      rule: 'eligibility-off',
    });
  });
});
