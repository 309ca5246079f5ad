"""The desktop application: Qt widgets over the engine. Nothing here imports Keras directly."""
