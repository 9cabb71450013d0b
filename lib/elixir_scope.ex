defmodule ElixirScope do
  @moduledoc """
  ElixirScope: introspection and time-travel debugging for a running Elixir system.

  ElixirScope records what processes do — lifecycles, messages, function calls and
  GenServer state changes — into a bounded store written in C, and answers questions
  about it from IEx: what did this GenServer's state look like at a given moment and
  which message changed it? Which messages flowed between two processes?

  The store is `ElixirScope.TraceDB`. Nothing runs until you start it.
  """

  @doc "The version of ElixirScope."
  @spec version() :: String.t()
  def version, do: unquote(Mix.Project.config()[:version])
end
