defmodule Phoenix.PubSub do
  @moduledoc """
  A stand-in for `Phoenix.PubSub` (phoenix_pubsub 2.x), compiled only in the test
  environment: hex packages cannot be fetched here. It follows the documented API
  that ElixirScope traces — `broadcast/3,4`, `broadcast!/3,4`, `broadcast_from/4,5`,
  `local_broadcast/3,4`, `local_broadcast_from/4,5`, `direct_broadcast/4,5`, each
  shorter arity a default-argument head of the longer one, as in the library — and
  `subscribe/2`, `unsubscribe/2`, with a duplicate-key `Registry` as the local
  dispatcher (on one node, which is all the tests need).

  Start one with `start_supervised!({Phoenix.PubSub, name: MyPubSub})`.
  """

  def child_spec(opts) do
    name = Keyword.fetch!(opts, :name)
    Registry.child_spec(keys: :duplicate, name: name)
  end

  def subscribe(pubsub, topic) when is_atom(pubsub) and is_binary(topic) do
    {:ok, _} = Registry.register(pubsub, topic, nil)
    :ok
  end

  def unsubscribe(pubsub, topic), do: Registry.unregister(pubsub, topic)

  def broadcast(pubsub, topic, message, dispatcher \\ __MODULE__)
      when is_atom(pubsub) and is_binary(topic) and is_atom(dispatcher),
      do: dispatch(pubsub, :none, topic, message)

  def broadcast!(pubsub, topic, message, dispatcher \\ __MODULE__) do
    :ok = broadcast(pubsub, topic, message, dispatcher)
  end

  def broadcast_from(pubsub, from, topic, message, dispatcher \\ __MODULE__)
      when is_atom(pubsub) and is_pid(from) and is_binary(topic) and is_atom(dispatcher),
      do: dispatch(pubsub, from, topic, message)

  def local_broadcast(pubsub, topic, message, dispatcher \\ __MODULE__)
      when is_atom(pubsub) and is_binary(topic) and is_atom(dispatcher),
      do: dispatch(pubsub, :none, topic, message)

  def local_broadcast_from(pubsub, from, topic, message, dispatcher \\ __MODULE__)
      when is_atom(pubsub) and is_pid(from) and is_binary(topic) and is_atom(dispatcher),
      do: dispatch(pubsub, from, topic, message)

  def direct_broadcast(node_name, pubsub, topic, message, dispatcher \\ __MODULE__)
      when is_atom(node_name) and is_atom(pubsub) and is_binary(topic) and is_atom(dispatcher) do
    if node_name == node(), do: dispatch(pubsub, :none, topic, message), else: :ok
  end

  defp dispatch(pubsub, from, topic, message) do
    Registry.dispatch(pubsub, topic, fn entries ->
      for {pid, _} <- entries, pid != from, do: send(pid, message)
    end)
  end
end
