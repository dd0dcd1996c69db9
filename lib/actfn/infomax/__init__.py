"""InfoMax across activations (seed 002): one linear layer, many small models trained at once.

One layer z = W x + b, a = f(z) (K units), trained to minimise the batch InfoMax loss

    L = - sum_j log(Var(a_j) + eps) + lambda * ||Corr(A) - I||_F^2

(:func:`.loss.infomax_loss`), or one of the design's baselines: ``variance_only`` (lambda = 0),
``reconstruction`` (an untied linear decoder, ||x - W' a||^2) and ``random`` (Xavier W, untrained).

:class:`.bank.InfoMaxBank` holds every model of one K as stacked tensors: ``S`` seeds x ``G`` settings
(activation, objective, lambda, constraint).  The models of one seed see the same minibatches, and
since Adam is elementwise each model's optimiser state stays its own: training the bank is training
each model alone, all at once (:mod:`.reference` trains one alone, the plain way, and the tests
check both agree).  Seeds pair the runs: seed ``s`` gives the same initial W to every setting.

The modules, in the order they build on each other:

=================  ==========================================================================
``setting``        a model apart from its seed (:class:`Setting`), the activations, initial W
``loss``           the design's loss and the reconstruction baseline's, gradients in closed form
``fast_path``      the bank's compiled CPU path: stacked and fused products, loss blocks, Adam
``bank``           :class:`InfoMaxBank`, the stacked models
``train``          minibatches per seed, the training loop, checkpoints
``reference``      one model, plain PyTorch: the specification the bank is tested against
``metrics``        the design's metrics of one trained layer on held-out data
``study``          every setting x seed for each K, and one record per model
``followups``      depth (a second layer) and transfer (a linear probe)
``stats``          the pre-specified hypothesis tests over seeds
``claims``         the design's claims, each with its verdict
``report``         the chapter's tables and figures
``summary``        the chapter's verdicts from one study's results
``record``         the recorded full-scale run and its replay
=================  ==========================================================================

This package re-exports the names a chapter uses, so ``from actfn import infomax as im`` then
``im.train_bank(...)`` reads as one module.
"""
from ..activations import PWL_KNOTS, PWL_RANGE, activate, gain as activation_gain
from .setting import (ACTIVATIONS, CONSTRAINTS, MATMUL_PRECISIONS, OBJECTIVES, Setting, bf16_products,
                      check_matmul_precision, xavier_weights)
from .loss import (EPS, InfoMaxLoss, ReconstructionLoss, correlation_matrix, covariance,
                   independent_correlation_floor, infomax_loss)
from .fast_path import BankAdam, InfoMaxBlocks, ProductRows, ReconstructionBlocks, StackedLinear
from .bank import InfoMaxBank, unit_rows_
from .train import CHECKPOINT_FORMAT, BankRun, seed_batches, train_bank
from .reference import OneLayer, train_one_model
from .metrics import (converged_epoch, convergence_epoch, effective_rank, gating, gaussian_copula_tc,
                      mean_abs_cosine, mean_sq_cosine, model_metrics, weight_redundancy)
from .study import (bank_records, check_study_parameters, checkpoint_path, layer_outputs, run_study,
                    setting_index, study_settings)
from .followups import (PROBE_ITERATIONS, SYNTHETIC_2D, depth_followup, linear_probe, logistic_loss_and_grad,
                        probe_followup, standardise_features, synthetic_2d)
