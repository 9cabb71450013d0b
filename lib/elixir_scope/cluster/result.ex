defmodule ElixirScope.Cluster.Result do
  @moduledoc """
  A cluster query's answer: the events merged from every node that answered (each with
  `:node` and `:cluster_time`), the cursor that continues the listing (`nil` when the
  nodes that answered have nothing more), and `missing`: the nodes that did not answer,
  each with why (`:timeout`, `:noconnection`, `:elixir_scope_not_loaded`,
  `{:incompatible_version, message}`, `{:error, message}`). A result with `missing` is
  partial: what those nodes recorded is not in it, and nothing else is left out.
  """
  defstruct events: [], cursor: nil, missing: []

  @type t :: %__MODULE__{
          events: [map()],
          cursor: binary() | nil,
          missing: [{node(), term()}]
        }
end
